"""Ctrl-C during a scan stops the demo at once.

bluesky's own handler makes the first Ctrl-C a *deferred* pause, taken at the next
checkpoint: a fly scan has none until it ends, so the demo would keep flying for the rest of
the scan. Here the first Ctrl-C asks for an immediate pause; the demo then aborts the run
(stop document ``abort``) and unwinds, stopping the controller and every process it started.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class PauseAtOnce:
    """A RunEngine context manager (``RunEngine(context_managers=[PauseAtOnce])``)."""

    def __init__(self, engine: Any):
        self.engine = engine
        self._previous: Any = None

    def _on_sigint(self, number: int, frame: FrameType | None) -> None:
        # request_pause hands work to the RunEngine's loop: not from inside a signal handler
        threading.Thread(target=self.engine.request_pause, kwargs={"defer": False},
                         name="pause-request", daemon=True).start()

    def __enter__(self) -> PauseAtOnce:
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)
