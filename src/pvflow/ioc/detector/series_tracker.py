"""Which series the controller is collecting, and which it must ignore (application layer).

A device may keep sending a series the IOC already gave up on (cancelled, or voided by an
error): those late events are dropped quietly by uuid, from a bounded memory of recent series.
Each started series gets Diss's short sequence counter ``SSQCNT``, which wraps at 16.
"""

from __future__ import annotations

import collections

from .events import DeviceConfig, StartDataEvent
from .series import Series, SeriesCollector

# Diss's short sequence counter wraps at 16.
SSQCNT_MODULO = 16
# Series ids whose late events are ignored after an error or cancel (bounded memory).
STALE_SERIES_KEPT = 64


class SeriesTracker:
    """The running series (its collector), the finished one awaiting PROCESS, the stale ones."""

    def __init__(self) -> None:
        self.running: SeriesCollector | None = None
        self._finished: Series | None = None
        self._stale: collections.deque[str] = collections.deque(maxlen=STALE_SERIES_KEPT)
        self._ssqcnt = -1

    @property
    def running_uuid(self) -> str:
        return self.running.uuid if self.running is not None else "?"

    def start(self, config: DeviceConfig, event: StartDataEvent) -> None:
        self._ssqcnt = (self._ssqcnt + 1) % SSQCNT_MODULO
        self.running = SeriesCollector(config, event, self._ssqcnt)

    def finish(self) -> None:
        """The running series ended: check it complete (SeriesError otherwise) and keep it
        for :meth:`take_finished`."""
        assert self.running is not None
        self._finished = self.running.finish()
        self.running = None

    def take_finished(self) -> Series:
        series, self._finished = self._finished, None
        assert series is not None
        return series

    def void(self) -> None:
        """Give up the running series: its late events will be ignored."""
        if self.running is not None:
            self._stale.append(self.running.uuid)
        self.running = None

    def ignore(self, series_uuid: str) -> None:
        """Ignore every later event of ``series_uuid``."""
        self._stale.append(series_uuid)

    def is_ignored(self, series_uuid: str) -> bool:
        return series_uuid in self._stale

    def forget_running(self) -> None:
        """READY again: nothing is running (a finished series was already handed over)."""
        self.running = None
