"""When to search for which channel, for both protocols' name searches (transport layer).

A channel is searched at once, then after 30 ms, doubling to a 5 s cap; the cap is short on
purpose because searches are cheap (a thousand names fit in a few dozen datagrams) and it
bounds how long a restarted server goes unnoticed when no beacon reaches us. A beacon from a
server not heard before restarts every back-off. One timer serves all channels.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

FIRST_RETRY = 0.03
MAX_INTERVAL = 5.0


class Searchable(Protocol):
    cid: int
    search_attempt: int
    search_due: float


SearchableT = TypeVar("SearchableT", bound=Searchable)


def next_interval(attempt: int) -> float:
    return min(FIRST_RETRY * 2.0 ** attempt, MAX_INTERVAL)


class SearchSchedule(Generic[SearchableT]):
    """The channels still searching, and when each is asked for next. I/O thread only."""

    def __init__(self, send: Callable[[list[SearchableT]], None],
                 call_later: Callable[[float, Callable[[], None]], object]):
        self._send = send
        self._call_later = call_later
        self._waiting: dict[int, SearchableT] = {}
        self._timer_due = float("inf")

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def add(self, channel: SearchableT) -> None:
        channel.search_attempt = 0
        channel.search_due = 0.0
        self._waiting[channel.cid] = channel
        self._arm(0.0)

    def remove(self, cid: int) -> None:
        self._waiting.pop(cid, None)

    def restart(self) -> None:
        """Search everything again now (a new server appeared: it may have what we seek)."""
        for channel in self._waiting.values():
            channel.search_attempt = 0
            channel.search_due = 0.0
        if self._waiting:
            self._arm(0.0)

    def clear(self) -> None:
        self._waiting.clear()

    def _arm(self, delay: float) -> None:
        due = time.monotonic() + delay
        if due < self._timer_due - 0.001:
            self._timer_due = due
            self._call_later(delay, self._send_due)

    def _send_due(self) -> None:
        now = time.monotonic()
        if now < self._timer_due - 0.001:
            return  # a superseded timer; the earlier one already ran
        self._timer_due = float("inf")
        due = [channel for channel in self._waiting.values() if channel.search_due <= now]
        if due:
            self._send(due)
        for channel in due:
            channel.search_due = now + next_interval(channel.search_attempt)
            channel.search_attempt += 1
        if self._waiting:
            earliest = min(channel.search_due for channel in self._waiting.values())
            self._arm(max(0.0, earliest - now))


def send_to_all(sock: socket.socket, datagrams: Iterable[bytes],
                targets: Iterable[tuple[str, int]], log: logging.Logger) -> None:
    """Every datagram to every target; an unreachable target does not stop the others."""
    targets = list(targets)
    for datagram in datagrams:
        for target in targets:
            try:
                sock.sendto(datagram, target)
            except OSError as exc:
                log.debug("search to %s:%s failed: %s", *target, exc)
