"""CA client settings from the standard EPICS environment variables (transport layer).

Read once when a Context starts, from ``os.environ`` or a mapping the caller passes, so tests
and embedded uses can configure a Context without touching the process environment.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from .protocol import DEFAULT_REPEATER_PORT, DEFAULT_SERVER_PORT

DEFAULT_MAX_PAYLOAD = 1 << 30  # with no EPICS_CA_MAX_ARRAY_BYTES: still refuse absurd headers
_SIOCGIFFLAGS = 0x8913
_SIOCGIFBRDADDR = 0x8919
_IFF_UP = 0x1
_IFF_BROADCAST = 0x2


def broadcast_addresses() -> list[str]:
    """The broadcast address of every interface that is up, as libca's automatic address
    list has it; the limited broadcast when the interfaces cannot be asked (not Linux)."""
    found: list[str] = []
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


def _parse_addresses(text: str, default_port: int, variable: str) -> list[tuple[str, int]]:
    addresses = []
    for entry in text.split():
        host, _, port = entry.partition(":")
        try:
            addresses.append((host, int(port) if port else default_port))
        except ValueError:
            raise ValueError(f"{variable}: {entry!r} is not HOST or HOST:PORT") from None
    return addresses


def _number(env: Mapping[str, str], variable: str, default: float) -> float:
    text = env.get(variable, "").strip()
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{variable}={text!r} is not a number") from None


@dataclass(frozen=True)
class CAConfig:
    addresses: tuple[tuple[str, int], ...]
    name_servers: tuple[tuple[str, int], ...]
    server_port: int
    repeater_port: int
    connection_timeout: float
    max_payload: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CAConfig:
        env = os.environ if env is None else env
        server_port = int(_number(env, "EPICS_CA_SERVER_PORT", DEFAULT_SERVER_PORT))
        repeater_port = int(_number(env, "EPICS_CA_REPEATER_PORT", DEFAULT_REPEATER_PORT))
        addresses = _parse_addresses(env.get("EPICS_CA_ADDR_LIST", ""), server_port,
                                     "EPICS_CA_ADDR_LIST")
        if env.get("EPICS_CA_AUTO_ADDR_LIST", "YES").strip().upper() != "NO":
            addresses.extend((address, server_port) for address in broadcast_addresses())
        name_servers = _parse_addresses(env.get("EPICS_CA_NAME_SERVERS", ""), server_port,
                                        "EPICS_CA_NAME_SERVERS")
        max_bytes = int(_number(env, "EPICS_CA_MAX_ARRAY_BYTES", DEFAULT_MAX_PAYLOAD))
        return cls(
            addresses=tuple(dict.fromkeys(addresses)),
            name_servers=tuple(name_servers),
            server_port=server_port,
            repeater_port=repeater_port,
            connection_timeout=_number(env, "EPICS_CA_CONN_TMO", 30.0),
            # a DBR_CTRL header plus padding rides on top of the array bytes
            max_payload=max(max_bytes, 16384) + 512,
        )
