"""Name resolution over UDP: batched PVA searches with back-off (transport layer).

Same policy as the CA search: many names per datagram (up to an Ethernet MTU), each channel
searched at once, then after 30 ms, doubling to a 5 s cap. A beacon from a server not heard
before resets the back-off of every channel still searching.
"""

from __future__ import annotations

import itertools
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterable

from ..errors import RemoteProtocolError
from .channel import Channel
from .protocol import (SEARCH_OVERHEAD, Beacon, SearchResponse, decode_datagram, search,
                       search_payload_size)

log = logging.getLogger("pvflow.pva.search")

MAX_DATAGRAM = 1400
FIRST_RETRY = 0.03
MAX_INTERVAL = 5.0


def search_datagrams(channels: Iterable[Channel], reply_port: int, sequence: int) -> list[bytes]:
    """Pack searches for ``channels`` into as few datagrams as fit the MTU."""
    datagrams: list[bytes] = []
    batch: list[tuple[int, str]] = []
    size = SEARCH_OVERHEAD
    for channel in channels:
        needed = search_payload_size(channel.name)
        if batch and (size + needed > MAX_DATAGRAM or len(batch) == 0xFFFF):
            datagrams.append(search(sequence, reply_port, batch))
            batch, size = [], SEARCH_OVERHEAD
        batch.append((channel.cid, channel.name))
        size += needed
    if batch:
        datagrams.append(search(sequence, reply_port, batch))
    return datagrams


def next_interval(attempt: int) -> float:
    return min(FIRST_RETRY * (2 ** attempt), MAX_INTERVAL)


class NameSearch:
    """The channels still looking for a server, and the UDP socket that asks for them.

    Runs on the I/O thread only.
    """

    def __init__(self, targets: Iterable[tuple[str, int]],
                 on_response: Callable[[SearchResponse], None],
                 schedule: Callable[[float, Callable[[], None]], object],
                 also_send: Callable[[list[Channel]], None] | None = None):
        self.targets = list(targets)
        self._on_response = on_response
        self._schedule = schedule
        self._also_send = also_send  # name servers: the same searches over TCP
        self._waiting: dict[int, Channel] = {}
        self._known_servers: set[bytes] = set()
        self._timer_due = float("inf")
        self._sequence = itertools.count(1)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.socket.setblocking(False)
        self.socket.bind(("0.0.0.0", 0))
        self.port = self.socket.getsockname()[1]

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
        for datagram in search_datagrams(due, self.port, next(self._sequence) & 0xFFFFFFFF):
            for target in self.targets:
                try:
                    self.socket.sendto(datagram, target)
                except OSError as exc:  # unreachable target: keep searching the others
                    log.debug("search to %s:%s failed: %s", *target, exc)
        if due and self._also_send is not None:
            self._also_send(due)
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
            try:
                messages = decode_datagram(data, host)
            except (RemoteProtocolError, ValueError, IndexError, struct.error) as exc:
                log.debug("bad datagram from %s: %s", host, exc)
                continue
            for message in messages:
                if isinstance(message, SearchResponse):
                    if message.found:
                        self._on_response(message)
                elif isinstance(message, Beacon):
                    self.on_beacon(message)

    def on_beacon(self, beacon: Beacon) -> None:
        if beacon.guid in self._known_servers:
            return
        self._known_servers.add(beacon.guid)
        for channel in self._waiting.values():  # a new server: it may have what we seek
            channel.search_attempt = 0
            channel.search_due = 0.0
        if self._waiting:
            self._arm(0.0)

    def close(self) -> None:
        self._waiting.clear()
        self.socket.close()
