"""Monitor updates of a detector IOC back into whole series, by their timestamps (no I/O).

A Diss-compatible IOC publishes every record of a series once (images, ``start_ts``,
``acq_td``, ``uuid``, ``numid``), then lets ``acquire`` fall to 0. Monitors of different PVs
reach a client in no guaranteed order relative to each other, and a ``get`` after the fall
races with the next series when the detector acquires again at once. The IOC's timestamps
do not race: every record of series N is stamped after the fall of series N-1 and no later
than the fall of series N. So the series closed by a fall at ``T`` is, for each PV, the one
update stamped in ``(previous fall, T]``.

A window in which every PV has its update is a series. One in which none has any (a cancel,
or an ERROR with nothing published) is skipped. One with some PVs but not others, or with
two updates of one PV, is a :class:`SeriesError` naming what is missing: never a silent gap.
An update stamped inside a window that was already closed also raises.

Subscriptions start one by one, on circuits of their own: a PV whose first update is stamped
after a fall joined too late for that window, which is skipped as from before the start; an
update stamped before ``acquire``'s first one may still arrive after it, and is dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .series import IncompleteSeriesError, SeriesError, first_int

ACQUIRE = "acquire"


@dataclass(frozen=True, slots=True)
class Window:
    """The updates of one series: ``{key: value}``, closed by the fall at ``closed_at``."""

    values: dict[str, Any]
    closed_at: float


class SeriesAssembler:
    """Collects ``(key, timestamp, value)`` updates and hands out complete windows.

    ``keys`` are the PVs published once per series; ``"acquire"`` is the gate. The first
    update of every key is its value at subscription time: it opens the bookkeeping (for
    ``acquire``) or is dropped when it belongs to a series before that.
    """

    def __init__(self, keys: Iterable[str], names: dict[str, str] | None = None) -> None:
        self.keys = tuple(keys)
        self.names = names or {}  # key -> PV name, for messages
        self._queues: dict[str, deque[tuple[float, Any]]] = {k: deque() for k in self.keys}
        self._seen: set[str] = set()
        self._falls: deque[float] = deque()
        self.empty_windows = 0  # falls with nothing published: cancelled series
        self._floor: float | None = None
        self._opened_at: float | None = None  # acquire's first stamp: bookkeeping starts there
        self._first_stamps: dict[str, float] = {}
        self._acquire: Any = None
        self.joined_late = 0  # windows before every PV was watched: skipped

    @property
    def pending_falls(self) -> int:
        return len(self._falls)

    @property
    def silent(self) -> list[str]:
        """Keys that have not sent their first update yet."""
        return [k for k in (ACQUIRE, *self.keys) if k not in self._seen]

    @property
    def subscribed(self) -> bool:
        return not self.silent

    def add(self, key: str, timestamp: float, value: Any) -> None:
        first = key not in self._seen
        self._seen.add(key)
        if key == ACQUIRE:
            self._add_acquire(timestamp, value, first)
            return
        if first:
            self._first_stamps[key] = timestamp
        if self._floor is not None and timestamp <= self._floor:
            if first or (self._opened_at is not None and timestamp <= self._opened_at):
                return  # the value at subscription, or an update from before the bookkeeping
            raise SeriesError(f"{self._name(key)}: an update stamped {timestamp:.6f} arrived "
                              f"after its series was closed at {self._floor:.6f}")
        self._queues[key].append((timestamp, value))

    def _add_acquire(self, timestamp: float, value: Any, first: bool) -> None:
        if first:
            self._floor = self._opened_at = timestamp
            for queue in self._queues.values():
                while queue and queue[0][0] <= timestamp:
                    queue.popleft()
        elif int(value) == 0 and int(self._acquire) != 0:
            self._falls.append(timestamp)
        self._acquire = value

    def take(self, give_up: bool = False) -> list[Window]:
        """Every window that can be decided now, oldest first.

        With ``give_up`` the oldest undecided window is decided with what has arrived: empty
        is skipped, partial raises (the caller says when it has waited long enough).
        """
        windows = []
        while self._falls:
            fall = self._falls[0]
            inside = {k: [v for t, v in q if t <= fall] for k, q in self._queues.items()}
            resolved = all(inside[k] or (q and q[-1][0] > fall) for k, q in self._queues.items())
            if not resolved and not give_up:
                break
            give_up = False
            self._close(fall)
            doubled = [self._name(k) for k, values in inside.items() if len(values) > 1]
            if doubled:
                raise SeriesError(f"two updates within one series of {', '.join(doubled)}")
            missing = [k for k, values in inside.items() if not values]
            if len(missing) == len(self.keys):
                self.empty_windows += 1  # nothing published: cancelled
                continue
            if missing and all(self._first_stamps.get(k, 0.0) > fall for k in missing):
                self.joined_late += 1  # their monitors started after this series
                continue
            if missing:
                numid = inside.get("numid")
                which = f"series {numid[0]}" if numid else "the series ending at " \
                    f"{fall:.6f}"
                raise IncompleteSeriesError(
                    f"{which} is incomplete: no "
                    f"{', '.join(self._name(k) for k in missing)} for it",
                    first_int(numid[0]) if numid else None)
            windows.append(Window({k: values[0] for k, values in inside.items()}, fall))
        return windows

    def _close(self, fall: float) -> None:
        self._falls.popleft()
        self._floor = fall
        for queue in self._queues.values():
            while queue and queue[0][0] <= fall:
                queue.popleft()

    def _name(self, key: str) -> str:
        return self.names.get(key, key)
