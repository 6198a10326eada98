"""The floors' name search: datagrams sent back to back, at most a window of them unanswered.

A thousand names fit in a few dozen datagrams and go out at once. Tens of thousands would
overflow a server's UDP receive buffer (about a hundred datagrams), so the floors keep at most
``WINDOW`` datagrams unanswered, as any client must at that scale, and send a datagram again
when its answers stop coming. That is all the pacing the floor has: a fixed window, no
congestion control.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterable, Sequence

WINDOW = 64  # datagrams without all their answers
RESEND_AFTER = 0.1  # seconds of silence before the unanswered datagrams go again
RECEIVE_BUFFER = 4 * 1024 * 1024

Server = tuple[str, int]
# (datagram bytes, the cids it asks for)
Datagram = tuple[bytes, Sequence[int]]
# one received datagram from its sender's host -> (cid, server) answers
Parse = Callable[[bytes, str], Iterable[tuple[int, Server]]]


def open_socket() -> socket.socket:
    """The search socket (a pvAccess search names its port in the datagram)."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    udp.bind(("0.0.0.0", 0))
    udp.settimeout(RESEND_AFTER)
    return udp


def search(udp: socket.socket, datagrams: Sequence[Datagram], targets: Sequence[Server],
           parse: Parse, timeout: float) -> dict[int, Server]:
    """The server of every cid asked for; ``TimeoutError`` if some stay unanswered. Closes
    ``udp``."""
    unanswered = [set(cids) for _, cids in datagrams]
    of_cid = {cid: index for index, (_, cids) in enumerate(datagrams) for cid in cids}
    found: dict[int, Server] = {}
    waiting: set[int] = set()  # datagrams sent, not fully answered
    next_index = 0
    deadline = time.monotonic() + timeout

    def send(index: int) -> None:
        for target in targets:
            udp.sendto(datagrams[index][0], target)

    try:
        while len(found) < len(of_cid):
            while next_index < len(datagrams) and len(waiting) < WINDOW:
                send(next_index)
                waiting.add(next_index)
                next_index += 1
            try:
                data, (host, _) = udp.recvfrom(65536)
            except socket.timeout:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(of_cid) - len(found)} names unanswered") from None
                for index in waiting:
                    send(index)
                continue
            for cid, server in parse(data, host):
                index = of_cid.get(cid)
                if index is None or cid in found:
                    continue
                found[cid] = server
                unanswered[index].discard(cid)
                if not unanswered[index]:
                    waiting.discard(index)
    finally:
        udp.close()
    return found



def by_server(found: dict[int, Server], names: dict[int, str]
              ) -> dict[Server, list[tuple[int, str]]]:
    """The ``(cid, name)`` pairs each server answered for."""
    grouped: dict[Server, list[tuple[int, str]]] = {}
    for cid, name in names.items():
        grouped.setdefault(found[cid], []).append((cid, name))
    return grouped
