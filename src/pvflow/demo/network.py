"""Free loopback ports and the EPICS variables that confine servers and clients to them.

A demo (or a test) must never collide with a real beamline on the same host or with a
parallel run: every server gets ports of its own on 127.0.0.1 and clients search only there.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

# below the usual ephemeral range: the lowest port pvflow picks for a server
LOWEST_PORT = 10_000
# the OS's randomness: a program that seeds ``random`` must not make parallel runs pick alike
_CHOICE = random.SystemRandom().choice


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (CA and PVA use one number for both).

    Picked outside the kernel's ephemeral range: a port from that range, once its server stops
    (an IOC restarted on the same ports), can be handed to any process's next outgoing
    connection, and the server could then not get it back."""
    low, high = _ephemeral_range()
    candidates = [*range(LOWEST_PORT, low), *range(high + 1, 65_536)]
    for _ in range(100):
        port = _CHOICE(candidates) if candidates else 0
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port found on 127.0.0.1")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default


def loopback_env(ca_port: int, repeater_port: int, pva_port: int | None = None,
                 pva_broadcast_port: int | None = None) -> dict[str, str]:
    """EPICS variables for a server on these ports and for clients that must find it."""
    env = {
        "EPICS_CA_ADDR_LIST": f"127.0.0.1:{ca_port}",
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_SERVER_PORT": str(ca_port),
        "EPICS_CA_REPEATER_PORT": str(repeater_port),
        "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CA_MAX_ARRAY_BYTES": str(64 * 1024 * 1024),
    }
    if pva_port is not None:
        broadcast = pva_broadcast_port or pva_port
        env.update({
            "EPICS_PVA_SERVER_PORT": str(pva_port),
            "EPICS_PVAS_SERVER_PORT": str(pva_port),
            "EPICS_PVA_BROADCAST_PORT": str(broadcast),
            "EPICS_PVAS_BROADCAST_PORT": str(broadcast),
            "EPICS_PVA_ADDR_LIST": f"127.0.0.1:{broadcast}",
            "EPICS_PVA_AUTO_ADDR_LIST": "NO",
            "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
        })
    return env
