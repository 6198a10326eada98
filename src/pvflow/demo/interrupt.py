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
        self._interrupted = False

    def _on_sigint(self, number: int, frame: FrameType | None) -> None:
        self._interrupted = True
        # request_pause hands work to the RunEngine's loop: not from inside a signal handler
        threading.Thread(target=self._pause, name="pause-request", daemon=True).start()

    def _pause(self) -> None:
        from bluesky._vendor.super_state_machine.errors import TransitionError

        try:
            self.engine.request_pause(defer=False)
        except TransitionError:
            pass  # idle as the call began or ended: __exit__ stops the demo all the same

    def __enter__(self) -> PauseAtOnce:
        self._previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)
        if self._interrupted and exc[0] is None and self.engine.state != "paused":
            # the pause did not take (the RunEngine could not pause when it was asked):
            # no Ctrl-C is lost, the call ends as one
            raise KeyboardInterrupt
