"""How long the demo spends waiting on PV I/O: a Context that times its blocking calls.

The summary table shows this next to each run's duration, which tells how much of a scan is
the control system's round trips and how much is the scan itself (moves, exposures, the
fly-scan controller's own pace).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ..context import Context

TIMED = ("get", "get_many", "put", "connect")  # the calls that block on the network


class IoClock:
    """Wraps a Context; every timed call adds its duration to :attr:`seconds`."""

    def __init__(self, context: Context):
        self._context = context
        self._lock = threading.Lock()
        self.seconds = 0.0
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._context, name)
        if name not in TIMED:
            return attribute
        return self._timed(attribute)

    def _timed(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                with self._lock:
                    self.seconds += elapsed
                    self.calls += 1

        return timed

    def lap(self) -> tuple[float, int]:
        """Seconds and calls since the last lap, then start a new one."""
        with self._lock:
            lap = self.seconds, self.calls
            self.seconds, self.calls = 0.0, 0
        return lap
