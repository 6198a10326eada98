"""When to search for which channel, for both protocols' name searches (transport layer).

Two rules, after libca's search timer (EPICS base ``searchTimer.cpp``):

- **Per channel, back-off.** A name is asked at once, then after 30 ms, doubling to a 5 s cap;
  the cap is short on purpose (a search is cheap) and bounds how long a restarted server goes
  unnoticed when no beacon reaches us. A beacon from a server not heard before restarts every
  back-off.
- **Per schedule, a congestion window.** Searches leave in *tries* of at most ``window``
  datagrams. A server's UDP socket holds only about a hundred datagrams (the kernel's default
  buffer): 50 000 names sent at once are mostly dropped unread, and the next burst of the
  unanswered ones is dropped again, each time on a longer back-off. So the next try leaves as
  soon as every name of the current one is answered, or at its deadline (twice the measured
  round trip); a try answered in full grows the window (doubling up to the threshold, then by
  one datagram), one with more than 1/8 of its names unanswered halves it. Names that went
  unanswered twice already are still sent but not counted: they are most likely names that
  no server has, not lost replies, and must not throttle the names a server is answering.

One timer serves all channels; everything here runs on the I/O thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import socket
import time
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

FIRST_RETRY = 0.03
MAX_INTERVAL = 5.0
INITIAL_WINDOW = 32.0  # datagrams: well inside one server's default UDP receive buffer
MAX_WINDOW = 64.0  # libca's cap
MIN_PERIOD = 0.02
MAX_PERIOD = 1.0
RECEIVE_BUFFER = 4 * 1024 * 1024
COUNTED_ATTEMPTS = 2  # a name answered by now is taken to exist: later silences are not loss


class Searchable(Protocol):
    cid: int
    search_attempt: int
    search_due: float


SearchableT = TypeVar("SearchableT", bound=Searchable)


def next_interval(attempt: int) -> float:
    return min(FIRST_RETRY * 2.0 ** attempt, MAX_INTERVAL)


class Try:
    """One round of search datagrams and what came back of it."""

    __slots__ = ("sent_at", "deadline", "counted", "answered", "cids", "last_answer")

    def __init__(self, sent_at: float, deadline: float, cids: set[int]):
        self.sent_at = sent_at
        self.deadline = deadline
        self.cids = cids  # counted names still unanswered
        self.counted = len(cids)
        self.answered = 0
        self.last_answer = sent_at

    @property
    def complete(self) -> bool:
        return not self.cids


class SearchSchedule(Generic[SearchableT]):
    """The channels still searching, when each is asked for next, and how many at once.

    ``send(channels)`` sends their searches and returns how many datagrams that took;
    ``cost(channel)`` is the bytes a channel's search takes in a datagram of ``capacity``
    bytes: the window is counted in datagrams, as the server's buffer fills by them.
    """

    def __init__(self, send: Callable[[list[SearchableT]], int],
                 call_later: Callable[[float, Callable[[], None]], object],
                 cost: Callable[[SearchableT], int], capacity: int,
                 clock: Callable[[], float] = time.monotonic):
        self._send = send
        self._call_later = call_later
        self._cost = cost
        self._capacity = capacity
        self._clock = clock
        self._waiting: dict[int, SearchableT] = {}
        self._queue: list[tuple[float, int, SearchableT]] = []  # (due, order, channel), lazy
        self._order = itertools.count()
        self._timer_due = float("inf")
        self._try: Try | None = None
        self.window = INITIAL_WINDOW
        self.threshold = MAX_WINDOW
        self.round_trip = MIN_PERIOD / 2
        self.datagrams_sent = 0
        self.names_sent = 0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def add(self, channel: SearchableT) -> None:
        channel.search_attempt = 0
        self._waiting[channel.cid] = channel
        self._enqueue(channel, self._clock())
        self._arm(0.0)

    def remove(self, cid: int) -> None:
        """Stop searching for ``cid`` (released, or given up on)."""
        self._waiting.pop(cid, None)

    def answered(self, cid: int) -> None:
        """A server has ``cid``: stop searching, and count the answer for the window."""
        if self._waiting.pop(cid, None) is None:
            return
        current = self._try
        if current is not None and cid in current.cids:
            current.cids.discard(cid)
            current.answered += 1
            current.last_answer = self._clock()
            if current.complete:
                self._arm(0.0)

    def restart(self) -> None:
        """Search again now what waits on a back-off (a new server appeared: it may have what
        we seek). Names not yet asked twice are due soon anyway: at start-up, when every
        server's first beacon arrives, touching them would queue them again once per server."""
        now = self._clock()
        restarted = False
        for channel in self._waiting.values():
            if channel.search_attempt >= COUNTED_ATTEMPTS:
                channel.search_attempt = 0
                self._enqueue(channel, now)
                restarted = True
        if restarted:
            self._arm(0.0)

    def clear(self) -> None:
        self._waiting.clear()
        self._queue.clear()

    def _enqueue(self, channel: SearchableT, due: float) -> None:
        channel.search_due = due
        heapq.heappush(self._queue, (due, next(self._order), channel))

    def _arm(self, delay: float) -> None:
        due = self._clock() + delay
        if due < self._timer_due - 0.0005:
            self._timer_due = due
            self._call_later(delay, self._tick)

    def _tick(self) -> None:
        now = self._clock()
        if now < self._timer_due - 0.0005:
            return  # a superseded timer; the earlier one already ran
        self._timer_due = float("inf")
        current = self._try
        if current is not None:
            if not current.complete and now < current.deadline:
                self._arm(current.deadline - now)
                return
            self._close(current)
        self._open(now)
        if self._try is not None:
            self._arm(self._try.deadline - now)
        elif self._queue:
            self._arm(max(0.0, self._queue[0][0] - now))

    def _close(self, current: Try) -> None:
        """Adjust the window to what the try's counted names got back."""
        self._try = None
        if not current.counted:
            return
        if current.answered:
            self.round_trip += (current.last_answer - current.sent_at - self.round_trip) / 8.0
        if current.answered >= current.counted - current.counted / 16:
            self.window = min(self.window * 2.0 if self.window < self.threshold
                              else self.window + 1.0, MAX_WINDOW)
        elif current.answered < current.counted - current.counted / 8:
            self.window = self.threshold = max(1.0, self.window / 2.0)

    def _open(self, now: float) -> None:
        """Send a try: due channels, oldest first, as many as fill the window's datagrams."""
        budget = int(self.window) * self._capacity
        batch: list[SearchableT] = []
        counted: set[int] = set()
        queue = self._queue
        while queue and queue[0][0] <= now:
            due, _, channel = queue[0]
            if self._waiting.get(channel.cid) is not channel or channel.search_due != due:
                heapq.heappop(queue)  # answered, removed or rescheduled since
                continue
            cost = self._cost(channel)
            if batch and cost > budget:
                break
            heapq.heappop(queue)
            budget -= cost
            batch.append(channel)
            if channel.search_attempt < COUNTED_ATTEMPTS:
                counted.add(channel.cid)
            self._enqueue(channel, now + next_interval(channel.search_attempt))
            channel.search_attempt += 1
        if not batch:
            return
        self.datagrams_sent += self._send(batch)
        self.names_sent += len(batch)
        period = min(max(2.0 * self.round_trip, MIN_PERIOD), MAX_PERIOD)
        self._try = Try(now, now + period, counted)


def search_socket() -> socket.socket:
    """A non-blocking UDP socket for searches and their replies, with a receive buffer large
    enough for a window of replies from many servers (the kernel caps it at ``rmem_max``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    sock.setblocking(False)
    sock.bind(("0.0.0.0", 0))
    return sock


def send_to_all(sock: socket.socket, datagrams: list[bytes],
                targets: Iterable[tuple[str, int]], log: logging.Logger) -> int:
    """Every datagram to every target; an unreachable target does not stop the others.
    Returns the number of datagrams (each counted once, whatever the number of targets)."""
    targets = list(targets)
    for datagram in datagrams:
        for target in targets:
            try:
                sock.sendto(datagram, target)
            except OSError as exc:
                log.debug("search to %s:%s failed: %s", *target, exc)
    return len(datagrams)
