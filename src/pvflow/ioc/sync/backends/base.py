"""What the sync IOC needs from a synchronisation device, and the built-in backends.

A backend is a class built as ``Backend(settings)`` with the methods below; ``module:Class``
selects a third-party one. All methods are coroutines run on the IOC's loop: a backend doing
blocking I/O must move it to a thread (the ``rre`` backend does).
"""

from __future__ import annotations

from typing import Protocol

BUILTIN_BACKENDS = {
    "sim": "pvflow.ioc.sync.backends.sim:SimSyncDevice",
    "rre": "pvflow.ioc.sync.backends.rre:RreSyncDevice",
}
BACKEND_GROUP = "pvflow.ioc.sync.backends"
REQUIRED_METHODS = ("open", "update", "clear", "close")


class SyncDevice(Protocol):
    """The device API of syncster (``update``, ``clear``, ``synced``, ``errors``, ``flags``)
    plus ``open``/``close`` and the raw states an operator wants to see."""

    synced: bool
    errors: list[str]  # hardware errors seen by the last update; non-empty -> ERROR
    pid_state: str  # lock-box servo state, e.g. LOCKED
    tracker_state: str  # phase tracker state, e.g. ACTIVE

    async def open(self) -> None: ...

    async def update(self) -> None: ...

    async def clear(self) -> None: ...

    async def close(self) -> None: ...

    @property
    def flags(self) -> list[str]: ...
