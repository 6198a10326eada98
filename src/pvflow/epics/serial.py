"""`SerialRunner`: one PV's callbacks, strictly in order, on whichever thread is free (integration
layer, no I/O).

A PV's monitor updates arrive in order on pvflow's callback workers; ophyd may also ask for an
immediate "run now" delivery from its own threads. Both go through one runner so a callback
never sees an older value after a newer one, without holding a lock while user code runs (a
callback that subscribes or reads another signal cannot deadlock).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger("pvflow.epics")


class SerialRunner:
    """Runs submitted calls one at a time in submission order.

    The thread that submits while the runner is idle drains the queue; a thread that submits
    while another drains only appends and returns.
    """

    def __init__(self, name: str):
        self.name = name
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._lock = threading.Lock()
        self._running = False

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        with self._lock:
            if self._running:
                self._calls.append((function, args))
                return
            self._running = True
        while True:  # two lock round trips per call when nobody else submits
            try:
                function(*args)
            except Exception:
                log.exception("%s: callback %r failed", self.name, function)
            with self._lock:
                if not self._calls:
                    self._running = False
                    return
                function, args = self._calls.popleft()
