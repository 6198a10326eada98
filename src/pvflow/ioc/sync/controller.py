"""The sync state machine of syncster, on the framework's :class:`StateMachine`.

States and transitions (syncster's documentation):

- INIT -> SYNCED when the device is locked, else OFF;
- OFF -> STRAY on a ``stray`` request, or by itself with ``SYNCSTER_AUTO_STRAY=yes``;
- STRAY -> SYNCED on lock; -> ERROR ("Sync timeout") after ``SYNCSTER_SYNC_TIMEOUT`` seconds;
- SYNCED -> ERROR ("Sync lost; flags: ...") when the lock is lost;
- ERROR -> OFF on ``clear``; any state -> ERROR when the device reports an error;
- FAIL: terminal (a bug or an unrecoverable start-up problem); the IOC exits non-zero.

The controller is stepped by the IOC's loop once per poll; it owns no I/O and no clock of its own
(``now`` is passed in), so it is easy to drive from tests.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable

from ..framework.state_machine import StateMachine
from ..framework.structured_logging import log_event
from .backends.base import SyncDevice

logger = logging.getLogger("pvflow.ioc.sync")


class SyncState(enum.Enum):
    INIT = "INIT"
    OFF = "OFF"
    STRAY = "STRAY"
    SYNCED = "SYNCED"
    ERROR = "ERROR"
    FAIL = "FAIL"


TRANSITIONS = {
    SyncState.INIT: {SyncState.SYNCED, SyncState.OFF, SyncState.ERROR},
    SyncState.OFF: {SyncState.STRAY, SyncState.ERROR},
    SyncState.STRAY: {SyncState.SYNCED, SyncState.ERROR},
    SyncState.SYNCED: {SyncState.ERROR, SyncState.OFF},
    SyncState.ERROR: {SyncState.OFF},
}


class SyncController:
    """Decides the state from the device's readings, the requests and the time."""

    def __init__(self, device: SyncDevice, *, auto_stray: bool = False,
                 sync_timeout: float | None = 300.0, clock: Callable[[], float]) -> None:
        if sync_timeout is not None and sync_timeout < 0:
            raise ValueError(f"sync_timeout must be >= 0 or None (forever), got {sync_timeout}")
        self.device = device
        self.auto_stray = auto_stray
        self.sync_timeout = sync_timeout
        self.clock = clock
        self.stray_requested = False
        self.entered_at = clock()
        self.machine: StateMachine[SyncState] = StateMachine(
            "sync", TRANSITIONS, initial=SyncState.INIT, error=SyncState.ERROR,
            fail=SyncState.FAIL, recover=SyncState.OFF, logger=logger)
        self.machine.observe(self._entered)
        self.machine.on_enter(SyncState.STRAY, self._enter_stray)
        self.machine.on_step(SyncState.INIT, self._step_init)
        self.machine.on_step(SyncState.OFF, self._step_off)
        self.machine.on_step(SyncState.STRAY, self._step_stray)
        self.machine.on_step(SyncState.SYNCED, self._step_synced)

    @property
    def state(self) -> SyncState:
        return self.machine.state

    def time_in_state(self) -> float:
        return max(0.0, self.clock() - self.entered_at)

    def request_stray(self) -> bool:
        """A ``stray`` write: honoured in OFF (True), ignored elsewhere (False)."""
        if self.state is SyncState.OFF:
            self.stray_requested = True
            return True
        log_event(logger, logging.INFO, "Stray request ignored", state=self.state.name)
        return False

    def step(self) -> None:
        """One poll: the device was just updated; errors first, then the state's own rule."""
        if self.device.errors:
            # in ERROR already, the errors stay listed once: the device repeats them each poll
            if self.state is not SyncState.ERROR:
                for error in self.device.errors:
                    self.machine.add_error(error)
            return
        self.machine.step()

    # ---------------------------------------------------------------- hooks
    def _entered(self, old: SyncState, new: SyncState) -> None:
        self.entered_at = self.clock()

    def _enter_stray(self, previous: SyncState) -> None:
        self.stray_requested = False

    def _step_init(self) -> SyncState:
        return SyncState.SYNCED if self.device.synced else SyncState.OFF

    def _step_off(self) -> SyncState | None:
        if self.auto_stray or self.stray_requested:
            return SyncState.STRAY
        return None

    def _step_stray(self) -> SyncState | None:
        if self.device.synced:
            return SyncState.SYNCED
        if self.sync_timeout is not None and self.time_in_state() > self.sync_timeout:
            self.machine.add_error(f"Sync timeout after {self.sync_timeout:g} s in STRAY; "
                                   f"flags: {' '.join(self.device.flags)}")
        return None

    def _step_synced(self) -> None:
        if not self.device.synced:
            self.machine.add_error(f"Sync lost; flags: {' '.join(self.device.flags)}")
