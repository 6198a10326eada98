"""The two deadlines of an acquisition (application layer; no EPICS, no asyncio).

Diss trusts the device to end every series; pvflow does not: a device that never starts, or
never ends, a series would hold the IOC in READY or ACQUIRE forever. So an Acquire command must
bring its StartDataEvent within ``DISS_ACQUIRE_OVERDUE`` seconds, and the series must end
within its exposure (``duration x num_images``) plus that margin, or plus the backend's own
image timeout and a grace, whichever is longer, so the backend's more specific error comes
first.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

# How much longer than a backend's own overdue time the generic check waits.
BACKEND_OVERDUE_GRACE = 5.0


class AcquireDeadlines:
    """The pending Acquire (claimed from a writer's thread) and the running series' deadline.

    ``overdue`` is ``DISS_ACQUIRE_OVERDUE`` (0: no check). :meth:`reserve` is thread-safe; the
    other methods run in the controller's loop.
    """

    def __init__(self, overdue: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.overdue = overdue
        self._clock = clock
        self._lock = threading.Lock()
        self._pending_since: float | None = None
        self._end_deadline: float | None = None

    def reserve(self) -> bool:
        """Claim the one pending acquisition; False if one is already starting."""
        with self._lock:
            if self._pending_since is not None:
                return False
            self._pending_since = self._clock()
            return True

    def release(self) -> None:
        """The pending Acquire was refused by the device or its series started."""
        with self._lock:
            self._pending_since = None

    def clear(self) -> None:
        """No acquisition is pending or running (READY entered, or ERROR)."""
        self.release()
        self._end_deadline = None

    def arm(self, exposure: float, backend_overdue: float | None) -> None:
        """Acquire sent for ``exposure`` seconds in all; ``backend_overdue`` is the backend's
        own wait for images (``DetectorBackend.image_overdue``)."""
        margin = self._margin(backend_overdue)
        self._end_deadline = None if margin is None else self._clock() + exposure + margin

    def _margin(self, backend_overdue: float | None) -> float | None:
        """Seconds past the exposure before ERROR; None: never (DISS_ACQUIRE_OVERDUE=0, or a
        backend that waits forever)."""
        own = self.overdue
        if not own or backend_overdue is None:
            return own or None
        if math.isinf(backend_overdue):
            return None
        return max(own, backend_overdue + BACKEND_OVERDUE_GRACE)

    def never_started(self) -> str | None:
        """The error when the pending Acquire brought no StartDataEvent in time, else None."""
        pending = self._pending_since
        if pending is None or not self.overdue or self._clock() - pending <= self.overdue:
            return None
        return (f"acquisition never started: no StartDataEvent within {self.overdue} s of the "
                f"Acquire command")

    def never_ended(self, series_uuid: str) -> str | None:
        """The error, once, when the running series is past its deadline, else None."""
        if self._end_deadline is None or self._clock() <= self._end_deadline:
            return None
        self._end_deadline = None
        return (f"acquisition overdue: no end of series {series_uuid} within {self.overdue} s "
                f"of its expected end")
