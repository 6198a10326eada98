"""`Flag`: a `threading.Event` for many objects at once (integration layer, no I/O).

Every PV object waits on two one-shot states (connected; first metadata read). An Event per
state brings a Condition and its lock each, which was 40% of making a PV: with a thousand
signals in a Device that is measurable. Flags instead share one condition per session;
a set wakes every waiter of that layer, who each look at their own flag again.
"""

from __future__ import annotations

import threading


class Flag:
    """``is_set`` / ``set`` / ``clear`` / ``wait`` as on ``threading.Event``.

    A set wakes the shared condition only when somebody waits on this very flag: a thread
    waiting for PV 200 is not woken (and the GIL not handed over) by PVs 1 to 199.
    """

    __slots__ = ("_condition", "_value", "_waiters")

    def __init__(self, condition: threading.Condition) -> None:
        self._condition = condition
        self._value = False
        self._waiters = 0  # threads in wait(), counted under the condition

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        with self._condition:
            self._value = True
            if self._waiters:
                self._condition.notify_all()

    def clear(self) -> None:
        self._value = False

    def wait(self, timeout: float | None = None) -> bool:
        if self._value:
            return True
        with self._condition:
            self._waiters += 1
            try:
                return self._condition.wait_for(self.is_set, timeout)
            finally:
                self._waiters -= 1
