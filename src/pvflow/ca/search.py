"""Name resolution over UDP: batched searches with back-off, and beacons (transport layer).

Many names go into one datagram (up to an Ethernet MTU). A channel is searched at once, then
after 30 ms, doubling to a 5 s cap; the cap is deliberately short because searches are cheap
(1000 names fit in ~30 datagrams) and it bounds how long a restarted IOC stays unnoticed when
no CA repeater forwards its beacons. A beacon from a server we have not heard before resets
the back-off of every channel still searching.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable

from .channel import Channel
from .protocol import Beacon, SearchResponse, decode_datagram, repeater_register, search, version

log = logging.getLogger("pvflow.ca.search")

MAX_DATAGRAM = 1450
FIRST_RETRY = 0.03
MAX_INTERVAL = 5.0


def search_datagrams(channels: Iterable[Channel]) -> list[bytes]:
    """Pack search requests for ``channels`` into as few datagrams as fit the MTU."""
    datagrams: list[bytes] = []
    head = version()
    parts: list[bytes] = [head]
    size = len(head)
    for channel in channels:
        message = search(channel.wire_name, channel.cid)
        if size + len(message) > MAX_DATAGRAM and len(parts) > 1:
            datagrams.append(b"".join(parts))
            parts, size = [head], len(head)
        parts.append(message)
        size += len(message)
    if len(parts) > 1:
        datagrams.append(b"".join(parts))
    return datagrams


def next_interval(attempt: int) -> float:
    return min(FIRST_RETRY * 2.0 ** attempt, MAX_INTERVAL)


class NameSearch:
    """The channels still looking for a server, and the UDP socket that asks for them.

    Runs on the I/O thread only: ``add``/``remove`` are called there by the client.
    """

    def __init__(self, targets: Iterable[tuple[str, int]], repeater_port: int,
                 on_response: Callable[[SearchResponse], None],
                 schedule: Callable[[float, Callable[[], None]], object]):
        self.targets = list(targets)
        self.repeater_port = repeater_port
        self._on_response = on_response
        self._schedule = schedule
        self._waiting: dict[int, Channel] = {}
        self._known_servers: set[tuple[str, int]] = set()
        self._timer_due = float("inf")
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.socket.setblocking(False)
        self.socket.bind(("0.0.0.0", 0))

    def register_with_repeater(self) -> None:
        """Ask a CA repeater on this host to forward server beacons to us (if one runs)."""
        try:
            self.socket.sendto(repeater_register(), ("127.0.0.1", self.repeater_port))
        except OSError:
            pass

    def add(self, channel: Channel) -> None:
        channel.search_attempt = 0
        channel.search_due = 0.0
        self._waiting[channel.cid] = channel
        self._arm(0.0)

    def remove(self, cid: int) -> None:
        self._waiting.pop(cid, None)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _arm(self, delay: float) -> None:
        due = time.monotonic() + delay
        if due < self._timer_due - 0.001:
            self._timer_due = due
            self._schedule(delay, self._send_due)

    def _send_due(self) -> None:
        now = time.monotonic()
        if now < self._timer_due - 0.001:
            return  # a superseded timer; the earlier one already ran
        self._timer_due = float("inf")
        due = [channel for channel in self._waiting.values() if channel.search_due <= now]
        for datagram in search_datagrams(due):
            for target in self.targets:
                try:
                    self.socket.sendto(datagram, target)
                except OSError as exc:  # unreachable target: keep searching the others
                    log.debug("search to %s:%s failed: %s", *target, exc)
        for channel in due:
            channel.search_due = now + next_interval(channel.search_attempt)
            channel.search_attempt += 1
        if self._waiting:
            earliest = min(channel.search_due for channel in self._waiting.values())
            self._arm(max(0.0, earliest - now))

    def on_readable(self, mask: int) -> None:
        while True:
            try:
                data, (host, _port) = self.socket.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP port unreachable from a dead target, on some kernels
                log.debug("search socket: %s", exc)
                return
            for message in decode_datagram(data, host):
                if isinstance(message, SearchResponse):
                    self._on_response(message)
                elif isinstance(message, Beacon):
                    self._on_beacon(message)

    def _on_beacon(self, beacon: Beacon) -> None:
        server = (beacon.host, beacon.port)
        if server in self._known_servers:
            return
        self._known_servers.add(server)
        for channel in self._waiting.values():  # a new server: it may have what we seek
            channel.search_attempt = 0
            channel.search_due = 0.0
        if self._waiting:
            self._arm(0.0)

    def close(self) -> None:
        self._waiting.clear()
        self.socket.close()
