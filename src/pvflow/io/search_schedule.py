"""When to search for which channel, for both protocols' name searches (transport layer).

Two rules, after libca's search timer (EPICS base ``searchTimer.cpp``) and TCP:

- **Per channel, back-off.** A name is asked at once, then after 30 ms, doubling to a 5 s cap;
  the cap is short on purpose (a search is cheap) and bounds how long a restarted server goes
  unnoticed when no beacon reaches us. A beacon from a server not heard before restarts the
  back-off of the names waiting on one.
- **Per schedule, a congestion window.** A server's UDP socket holds only about a hundred
  datagrams (the kernel's default buffer): 50 000 names sent at once are mostly dropped
  unread, and the next burst of the unanswered ones is dropped again, each time on a longer
  back-off. So at most ``window`` datagrams' worth of names are unanswered at once; each answer
  makes room for more (the window slides, so one slow server among twenty does not hold the
  others up), and grows the window: by a datagram per datagram answered up to the threshold
  (doubling every round trip), by one datagram per round trip past it. When more than 1/8 of
  one send's names go unanswered for two round trips, the window and threshold halve (once per
  round trip). Names that went unanswered twice already are still sent, within the window, but
  not waited for: they are most likely names that no server has, not lost replies, and must
  not throttle the names a server is answering.

One timer serves all channels; everything here runs on the I/O thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, Protocol, TypeVar

FIRST_RETRY = 0.03
MAX_INTERVAL = 5.0
INITIAL_WINDOW = 32.0  # datagrams: well inside one server's default UDP receive buffer
MAX_WINDOW = 64.0  # libca's cap
MIN_TIMEOUT = 0.02  # an answer later than this (or two round trips) counts as lost
MAX_TIMEOUT = 1.0
RECEIVE_BUFFER = 4 * 1024 * 1024
COUNTED_ATTEMPTS = 2  # a name answered by now is taken to exist: later silences are not loss


class Searchable(Protocol):
    cid: int
    search_attempt: int
    search_due: float


SearchableT = TypeVar("SearchableT", bound=Searchable)


def next_interval(attempt: int) -> float:
    return min(FIRST_RETRY * 2.0 ** attempt, MAX_INTERVAL)


# every interval before the cap, looked up by attempt (every name sent pays for one)
INTERVALS = tuple(itertools.takewhile(lambda interval: interval < MAX_INTERVAL,
                                      map(next_interval, itertools.count())))


class Send(Generic[SearchableT]):
    """One send: its names with the time each is due again if unanswered, and how many of
    them count for the window; its losses are judged together, once it times out. (Two
    lists, not a tuple per name: at 100 000 names every object the garbage collector tracks
    costs, in every collection until the send expires.)"""

    __slots__ = ("sent_at", "channels", "dues", "counted")

    def __init__(self, sent_at: float, channels: list[SearchableT], dues: list[float],
                 counted: int):
        self.sent_at = sent_at
        self.channels = channels
        self.dues = dues
        self.counted = counted


class SearchSchedule(Generic[SearchableT]):
    """The channels still searching, when each is asked for next, and how many at once.

    ``send(channels)`` sends their searches and returns how many datagrams that took;
    ``cost(channel)`` is the bytes a channel's search takes in a datagram of ``capacity``
    bytes: the window is counted in datagrams, as a server's buffer fills by them.
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
        # Due now, in order (new, or restarted: not asked since, ``search_attempt`` 0); and
        # due later (unanswered, on a back-off). Both lazy: an entry whose channel has moved on
        # since is skipped. A name answered before its send times out never enters the heap.
        self._fresh: deque[SearchableT] = deque()
        self._queue: list[tuple[float, int, SearchableT]] = []  # (due, order, channel)
        self._order = itertools.count()
        self._timer_due = float("inf")
        self._in_flight: dict[int, float] = {}  # cid: sent at, of the names waited for
        self._in_flight_bytes = 0
        self._sends: deque[Send[SearchableT]] = deque()
        self._last_cut = -float("inf")
        self.window = INITIAL_WINDOW
        self.threshold = MAX_WINDOW
        self.round_trip = MIN_TIMEOUT / 2
        self.datagrams_sent = 0
        self.names_sent = 0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def timeout(self) -> float:
        return min(max(2.0 * self.round_trip, MIN_TIMEOUT), MAX_TIMEOUT)

    def add(self, channel: SearchableT) -> None:
        self.add_many((channel,))

    def add_many(self, channels: Iterable[SearchableT]) -> None:
        """Search for ``channels`` from now on, first in line after those already due."""
        channels = channels if isinstance(channels, (list, tuple)) else list(channels)
        now = self._clock()
        waiting, fresh = self._waiting, self._fresh
        for channel in channels:
            channel.search_attempt = 0
            channel.search_due = now
            waiting[channel.cid] = channel
        fresh.extend(channels)
        self._arm(0.0)

    def remove(self, cid: int) -> None:
        """Stop searching for ``cid`` (released, or given up on)."""
        channel = self._waiting.pop(cid, None)
        if channel is not None:
            self._settle(channel)

    def answered(self, cid: int) -> None:
        self.answered_many((cid,))

    def answered_many(self, cids: Iterable[int]) -> None:
        """Servers have ``cids`` (the answers of one datagram): stop searching for them, and
        let their answers open the window (together: one update per datagram)."""
        waiting_pop, in_flight_pop, cost = self._waiting.pop, self._in_flight.pop, self._cost
        now = self._clock()
        round_trip = self.round_trip
        answered_bytes = 0
        for cid in cids:
            channel = waiting_pop(cid, None)
            sent_at = None if channel is None else in_flight_pop(cid, None)
            if channel is None or sent_at is None:
                continue  # not searching, or not waited for
            answered_bytes += cost(channel)
            round_trip += (now - sent_at - round_trip) / 8.0
        if not answered_bytes:
            return
        self.round_trip = round_trip
        self._in_flight_bytes -= answered_bytes
        grown = answered_bytes / self._capacity
        if self.window >= self.threshold:
            grown /= self.window
        self.window = min(self.window + grown, MAX_WINDOW)
        # a tick already due now will send what the room allows: no need to arm one
        if self._timer_due > now and (self._fresh or self._queue) and \
                self._room() >= self._capacity:
            self._arm(0.0)

    def restart(self) -> None:
        """Search again now what waits on a back-off (a new server appeared: it may have what
        we seek). Names not yet asked twice are due soon anyway: at start-up, when every
        server's first beacon arrives, touching them would queue them again once per server."""
        backed_off = [channel for channel in self._waiting.values()
                      if channel.search_attempt >= COUNTED_ATTEMPTS]
        if backed_off:
            self.add_many(backed_off)

    def clear(self) -> None:
        self._waiting.clear()
        self._fresh.clear()
        self._queue.clear()
        self._in_flight.clear()
        self._in_flight_bytes = 0
        self._sends.clear()

    def _settle(self, channel: SearchableT) -> tuple[float, int] | None:
        """No longer wait for ``channel``'s answer; when it was sent and its bytes, if it
        was waited for."""
        sent_at = self._in_flight.pop(channel.cid, None)
        if sent_at is None:
            return None
        bytes_ = self._cost(channel)
        self._in_flight_bytes -= bytes_
        return sent_at, bytes_

    def _room(self) -> int:
        return int(self.window) * self._capacity - self._in_flight_bytes

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
        self._expire(now)
        room = self._room()
        if room >= self._capacity or not self._in_flight:
            self._send_due(now, max(room, self._capacity))
        if self._sends:
            self._arm(self._sends[0].sent_at + self.timeout - now)
        elif self._fresh:
            self._arm(0.0)
        elif self._queue:
            self._arm(max(0.0, self._queue[0][0] - now))

    def _expire(self, now: float) -> None:
        """Give up waiting for the names of sends older than the timeout: each goes on its
        back-off; cut the window when too many of one send went unanswered (once per round
        trip)."""
        sends, waiting, queue = self._sends, self._waiting, self._queue
        limit = now - self.timeout
        while sends and sends[0].sent_at <= limit:
            send = sends.popleft()
            lost = 0
            for channel, due in zip(send.channels, send.dues):
                if waiting.get(channel.cid) is channel and channel.search_due == due:
                    heapq.heappush(queue, (due, next(self._order), channel))
                    if self._settle(channel) is not None:
                        lost += 1
            if lost > send.counted / 8 and send.sent_at > self._last_cut:
                self.window = self.threshold = max(1.0, self.window / 2.0)
                self._last_cut = now

    def _send_due(self, now: float, budget: int) -> None:
        """Send due channels, oldest first, as many as fill ``budget`` bytes of datagrams."""
        budget = budget // self._capacity * self._capacity
        batch: list[SearchableT] = []
        dues: list[float] = []
        counted = counted_bytes = 0
        fresh, queue, waiting, in_flight = self._fresh, self._queue, self._waiting, self._in_flight
        cost_of, intervals = self._cost, INTERVALS
        while True:
            if fresh and (not queue or fresh[0].search_due <= queue[0][0]):
                channel = fresh.popleft()
                if channel.search_attempt or waiting.get(channel.cid) is not channel:
                    continue  # asked since it was queued, or answered or removed
            elif queue and queue[0][0] <= now:
                entry = heapq.heappop(queue)
                channel = entry[2]
                if waiting.get(channel.cid) is not channel or channel.search_due != entry[0]:
                    continue  # answered, removed or queued again since
            else:
                break
            cost = cost_of(channel)
            if batch and cost > budget:  # the next send's first
                if channel.search_attempt:
                    heapq.heappush(queue, entry)
                else:
                    fresh.appendleft(channel)
                break
            budget -= cost
            batch.append(channel)
            attempt = channel.search_attempt
            if attempt < COUNTED_ATTEMPTS and channel.cid not in in_flight:
                counted += 1
                counted_bytes += cost
                in_flight[channel.cid] = now
            due = channel.search_due = now + (
                intervals[attempt] if attempt < len(intervals) else MAX_INTERVAL)
            channel.search_attempt = attempt + 1
            dues.append(due)
        self._in_flight_bytes += counted_bytes
        if not batch:
            return
        self.datagrams_sent += self._send(batch)
        self.names_sent += len(batch)
        self._sends.append(Send(now, batch, dues, counted))


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
