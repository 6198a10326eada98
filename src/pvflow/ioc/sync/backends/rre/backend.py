"""The ``rre`` backend: a Menlo Syncro RRE on a serial port (pyserial, RBP/HRT).

Each update reads the lock-box PID status and the tracker state. The serial I/O runs in a
worker thread (``asyncio.to_thread``), so the IOC's event loop never blocks on the line. Any
serial error or timeout becomes an error with the reason (naming the port), which moves the
IOC to ERROR; the port is closed and reopened on the next update, so a replugged adapter is
picked up again after ``clear``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .client import DEFAULT_TIMEOUT, RreClient, RreError
from .registers import PID_STATUS_PATH, TRACKER_STATE_PATH, PidState, TrackerState


class RreSyncDevice:
    """Synced means the lock-box PID is LOCKED (the tracker state is shown, not required)."""

    def __init__(self, settings: Any) -> None:
        port = getattr(settings, "rre_port", None)
        if not port:
            raise ValueError("the rre backend needs SYNCSTER_RRE_PORT (e.g. /dev/ttyUSB0)")
        self.port = port
        self.client = RreClient(port, timeout=getattr(settings, "rre_timeout", DEFAULT_TIMEOUT))
        self.synced = False
        self.errors: list[str] = []
        self.pid_state = "UNKNOWN"
        self.tracker_state = "UNKNOWN"

    async def open(self) -> None:
        """Open the port now so a wrong port shows at start (as an error, not a crash)."""
        await self.update()

    async def update(self) -> None:
        try:
            pid, tracker = await asyncio.to_thread(self._read_states)
        except RreError as error:
            await asyncio.to_thread(self.client.close)
            self.synced = False
            self.pid_state = self.tracker_state = "UNKNOWN"
            self.errors = [str(error)]
            return
        self.errors = []
        self.pid_state = _name(PidState, pid)
        self.tracker_state = _name(TrackerState, tracker)
        self.synced = pid == PidState.LOCKED

    def _read_states(self) -> tuple[object, object]:
        return self.client.read_path(PID_STATUS_PATH), self.client.read_path(TRACKER_STATE_PATH)

    async def clear(self) -> None:
        """Nothing latches in the device; a failing port is retried on the next update."""

    async def close(self) -> None:
        await asyncio.to_thread(self.client.close)

    @property
    def flags(self) -> list[str]:
        return [f"pid:{self.pid_state}", f"trk:{self.tracker_state}"]


def _name(states: type[PidState] | type[TrackerState], value: object) -> str:
    try:
        return states(value).name  # type: ignore[arg-type]
    except ValueError:
        return f"UNKNOWN({value!r})"
