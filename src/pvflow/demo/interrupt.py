"""Ctrl-C during a scan stops the demo at once.

bluesky's own handler makes the first Ctrl-C a *deferred* pause, taken at the next
checkpoint: a fly scan has none until it ends, so the demo would keep flying for the rest of
the scan. Here the first Ctrl-C asks for an immediate pause; the demo then aborts the run
(stop document ``abort``) and unwinds, stopping the controller and every process it started.

Python runs a signal's handler in the main thread only, between bytecodes, and the kernel may
hand a process's SIGINT to any of its threads: the main thread, blocked in the RunEngine's one
long wait for the plan, then slept on until the plan ended (seen: a 100 s fly scan ran out
after a Ctrl-C at its start). :class:`WakeForSignals` makes that wait short slices.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from bluesky.utils import DuringTask

# how long a Ctrl-C can wait for the main thread to notice it
WAKE_SECONDS = 0.1


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


class WakeForSignals(DuringTask):
    """A RunEngine ``during_task`` that waits for the plan in slices of
    :data:`WAKE_SECONDS`, so the main thread runs a pending signal handler in time."""

    def block(self, blocking_event: threading.Event) -> None:
        while not blocking_event.wait(WAKE_SECONDS):
            pass
