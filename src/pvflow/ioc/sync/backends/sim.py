"""The ``sim`` backend: a synchronisation device whose lock is set by tests and demos.

Scriptable through the Python API (:meth:`SimSyncDevice.pretend_synced`,
:meth:`SimSyncDevice.inject_error`) and, in the IOC, through the test-only PVs
``$(P)sim:locked`` and ``$(P)sim:inject_error``. Starts locked, like syncster's mock.
"""

from __future__ import annotations

from typing import Any

from .rre.registers import PidState, TrackerState


class SimSyncDevice:
    """Always answers; locked until told otherwise."""

    def __init__(self, settings: Any = None) -> None:
        self.synced = True
        self.errors: list[str] = []
        self._pending_errors: list[str] = []
        self.pid_state = PidState.LOCKED.name
        self.tracker_state = TrackerState.ACTIVE.name

    def pretend_synced(self, synced: bool) -> None:
        """Set the simulated lock; the next update reports it."""
        self.synced = bool(synced)

    def inject_error(self, message: str) -> None:
        """Report ``message`` as a hardware error on the next update."""
        if not message:
            raise ValueError("an injected error needs a message")
        self._pending_errors.append(message)

    async def open(self) -> None:
        """Nothing to open."""

    async def update(self) -> None:
        self.errors, self._pending_errors = self._pending_errors, []
        self.pid_state = (PidState.LOCKED if self.synced else PidState.OFF).name
        self.tracker_state = (TrackerState.ACTIVE if self.synced else TrackerState.DORMANT).name

    async def clear(self) -> None:
        self._pending_errors.clear()

    async def close(self) -> None:
        """Nothing to close."""

    @property
    def flags(self) -> list[str]:
        return [f"pid:{self.pid_state}", f"trk:{self.tracker_state}"]
