"""pyepics' ``CAProcess`` and ``CAPool``: multiprocessing that works with EPICS (integration
layer).

A forked child cannot use its parent's sockets. pvflow's session is replaced by a fresh one in
every forked child (see :mod:`pvflow.epics.session`), so these are multiprocessing's own
classes plus that promise; they stay for scripts that name them.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.pool import Pool
from typing import Any

from .session import forget


class CAProcess(multiprocessing.Process):
    """A Process whose target starts with its own pvflow session."""

    def run(self) -> None:
        forget()  # under spawn or forkserver too: nothing cached from the parent's import
        super().run()


class CAPool(Pool):
    """A Pool of CAProcess workers."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("initializer", forget)
        super().__init__(*args, **kwargs)
