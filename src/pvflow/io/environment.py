"""Reading the EPICS_* environment variables both protocols share the shape of (transport
layer): address lists, numbers with errors that name the variable, and the interfaces'
broadcast addresses for the automatic address lists.
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Mapping

_SIOCGIFFLAGS = 0x8913
_SIOCGIFBRDADDR = 0x8919
_IFF_UP = 0x1
_IFF_BROADCAST = 0x2


def broadcast_addresses() -> list[str]:
    """The broadcast address of every interface that is up, as libca's automatic address
    list has it; the limited broadcast when the interfaces cannot be asked (not Linux)."""
    found: list[str] = []
    if not sys.platform.startswith("linux"):  # the ioctl numbers below are Linux's
        return ["255.255.255.255"]
    import fcntl  # not on Windows

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            for _, name in socket.if_nameindex():
                request = struct.pack("256s", name.encode()[:15])
                flags = struct.unpack_from("H", fcntl.ioctl(probe, _SIOCGIFFLAGS, request), 16)[0]
                if flags & _IFF_UP and flags & _IFF_BROADCAST:
                    answer = fcntl.ioctl(probe, _SIOCGIFBRDADDR, request)
                    found.append(socket.inet_ntoa(answer[20:24]))
    except OSError:
        pass
    return found or ["255.255.255.255"]


def parse_addresses(text: str, default_port: int, variable: str) -> list[tuple[str, int]]:
    addresses = []
    for entry in text.split():
        host, _, port = entry.partition(":")
        try:
            addresses.append((host, int(port) if port else default_port))
        except ValueError:
            raise ValueError(f"{variable}: {entry!r} is not HOST or HOST:PORT") from None
    return addresses


def number(env: Mapping[str, str], variable: str, default: float) -> float:
    text = env.get(variable, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{variable}={text!r} is not a number") from None


def search_addresses(env: Mapping[str, str], protocol: str, search_port: int,
                     server_port: int) -> tuple[tuple[tuple[str, int], ...],
                                                tuple[tuple[str, int], ...]]:
    """Where to search and which name servers to ask, for ``protocol`` ("CA" or "PVA"):
    ``EPICS_<protocol>_ADDR_LIST`` plus the broadcast addresses (unless
    ``EPICS_<protocol>_AUTO_ADDR_LIST=NO``), and ``EPICS_<protocol>_NAME_SERVERS``."""
    variable = f"EPICS_{protocol}_ADDR_LIST"
    addresses = parse_addresses(env.get(variable, ""), search_port, variable)
    if env.get(f"EPICS_{protocol}_AUTO_ADDR_LIST", "YES").strip().upper() != "NO":
        addresses.extend((address, search_port) for address in broadcast_addresses())
    variable = f"EPICS_{protocol}_NAME_SERVERS"
    name_servers = parse_addresses(env.get(variable, ""), server_port, variable)
    return tuple(dict.fromkeys(addresses)), tuple(name_servers)
