"""The search schedule's pacing, on a clock the test moves: how many names leave per try, how
the window follows what comes back, and how soon an unanswered name is asked again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pvflow.io.search_schedule import (FIRST_RETRY, INITIAL_WINDOW, MAX_WINDOW, MIN_TIMEOUT,
                                       SearchSchedule)

NAMES_PER_DATAGRAM = 10


@dataclass(eq=False)
class Name:
    cid: int
    search_attempt: int = 0
    search_due: float = 0.0


class Harness:
    """A schedule whose timers run when the test advances the clock."""

    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.tries: list[list[int]] = []
        self.schedule: SearchSchedule[Name] = SearchSchedule(
            self._send, self._call_later, lambda name: 100, 100 * NAMES_PER_DATAGRAM,
            clock=lambda: self.now)

    def _send(self, names: list[Name]) -> int:
        self.tries.append([name.cid for name in names])
        return -(-len(names) // NAMES_PER_DATAGRAM)

    def _call_later(self, delay: float, callback: Callable[[], None]) -> None:
        self.timers.append((self.now + delay, callback))

    def run_until(self, when: float) -> None:
        """Run every timer due by ``when`` (and those they start), moving the clock along."""
        while True:
            due = [timer for timer in self.timers if timer[0] <= when]
            if not due:
                break
            timer = min(due, key=lambda item: item[0])
            self.timers.remove(timer)
            self.now = max(self.now, timer[0])
            timer[1]()
        self.now = max(self.now, when)

    def add(self, count: int, first: int = 0) -> list[Name]:
        names = [Name(cid) for cid in range(first, first + count)]
        for name in names:
            self.schedule.add(name)
        self.run_until(self.now)
        return names

    def answer(self, cids: list[int], after: float = 0.001) -> None:
        self.now += after
        for cid in cids:
            self.schedule.answered(cid)
        self.run_until(self.now)


def test_one_window_leaves_first_and_the_rest_as_answers_make_room() -> None:
    harness = Harness()
    harness.add(10_000)
    first = int(INITIAL_WINDOW) * NAMES_PER_DATAGRAM
    assert [len(batch) for batch in harness.tries] == [first]
    harness.run_until(harness.now + MIN_TIMEOUT / 2)
    assert len(harness.tries) == 1  # nothing more leaves while the window is full
    harness.answer(harness.tries[0][:NAMES_PER_DATAGRAM])
    # a datagram answered: room for it, and (slow start) for one more
    assert [len(batch) for batch in harness.tries[1:]] == [2 * NAMES_PER_DATAGRAM]
    harness.answer(harness.tries[0][NAMES_PER_DATAGRAM:] + harness.tries[1])
    assert harness.schedule.window == 2 * INITIAL_WINDOW


def test_every_name_is_asked_once_when_every_one_is_answered() -> None:
    harness = Harness()
    harness.add(20_000)
    while harness.schedule.waiting:
        harness.answer(harness.tries[-1])
    asked = [cid for batch in harness.tries for cid in batch]
    assert sorted(asked) == list(range(20_000))
    assert max(len(batch) for batch in harness.tries) == MAX_WINDOW * NAMES_PER_DATAGRAM


def test_loss_halves_the_window_and_lost_names_are_asked_again_without_back_off() -> None:
    harness = Harness()
    names = harness.add(5_000)
    first = harness.tries[0]
    harness.answer(first[: len(first) // 2])  # half the replies were dropped
    grown = harness.schedule.window
    harness.run_until(harness.now + MIN_TIMEOUT)
    assert harness.schedule.window == harness.schedule.threshold == grown / 2
    lost = set(first[len(first) // 2:])
    while harness.schedule.waiting:  # the server answers everything from now on
        harness.answer([cid for cid in harness.tries[-1]], after=MIN_TIMEOUT)
    assert {cid for batch in harness.tries[1:] for cid in batch} >= lost
    assert {names[cid].search_attempt for cid in lost} == {2}  # asked twice, no more


def test_names_no_server_has_do_not_throttle_the_others() -> None:
    harness = Harness()
    missing = harness.add(100)  # asked for twice, never answered
    harness.run_until(harness.now + 3 * FIRST_RETRY + 3 * MIN_TIMEOUT)
    assert all(name.search_attempt >= 2 for name in missing)
    window = harness.schedule.window
    harness.add(5_000, first=1_000)
    for _ in range(6):
        batch = [cid for cid in harness.tries[-1] if cid >= 1_000]
        harness.answer(batch)
    assert harness.schedule.window > window


def test_a_new_server_restarts_only_the_backed_off_names() -> None:
    harness = Harness()
    old = harness.add(10)
    harness.run_until(harness.now + 10.0)  # unanswered: deep into the back-off
    assert all(name.search_attempt > 3 for name in old)
    fresh = harness.add(5, first=100)
    before = len(harness.tries)
    harness.schedule.restart()
    harness.run_until(harness.now + MIN_TIMEOUT)
    assert all(name.search_attempt <= 1 for name in old)
    assert all(name.search_attempt == 1 for name in fresh)  # not queued again
    assert len(harness.tries) > before



def test_no_name_is_dropped_when_a_send_is_full() -> None:
    """Nobody answers: the window shrinks to one datagram, so every send stops at a name
    that does not fit, first the new names and then those on their back-off."""
    harness = Harness()
    names = harness.add(1_000)
    harness.run_until(harness.now + 30.0)
    asked = [cid for batch in harness.tries for cid in batch]
    assert max(len(batch) for batch in harness.tries[-10:]) == NAMES_PER_DATAGRAM
    assert min(map(asked.count, range(1_000))) >= 2
    assert all(name.search_attempt >= 2 for name in names)
