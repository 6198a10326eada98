"""The records of the sync IOC (application layer, over pythonSoftIOC).

PVs under ``SYNCSTER_PREFIX``: syncster's ``state``, ``error``, ``clear``, ``stray``; the
framework's ``error_text``; and for operators ``pid_state``, ``tracker_state`` (the raw
lock-box and tracker states) and ``state_time`` (seconds in the current state). With the
``sim`` backend, the test-only PVs ``sim:locked`` (0/1) and ``sim:inject_error`` (a message)
script the simulated device.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..framework.records import LoopThread, StatusRecords, check_record_name, publish
from .backends.base import SyncDevice
from .backends.sim import SimSyncDevice
from .controller import SyncController, SyncState

logger = logging.getLogger("pvflow.ioc.sync")


class SyncRecords:
    """Builds the records (call from ``build_records``) and publishes the device's state."""

    def __init__(self, prefix: str, controller: SyncController, device: SyncDevice,
                 loop_thread: LoopThread) -> None:
        from softioc import builder

        self.controller = controller
        self.device = device
        self.loop_thread = loop_thread
        p = prefix
        self.status = StatusRecords(p, controller.machine, loop_thread,
                                    on_clear=self._clear, logger=logger, clear_values={1})
        self.stray = builder.longOut(
            check_record_name(p + "stray"), initial_value=0, always_update=True,
            validate=self.status.guarded(self._validate_stray))
        self.pid_state = builder.stringIn(
            check_record_name(p + "pid_state"), initial_value=device.pid_state,
            SCAN="Passive")
        self.tracker_state = builder.stringIn(
            check_record_name(p + "tracker_state"), initial_value=device.tracker_state,
            SCAN="Passive")
        self.state_time = builder.aIn(
            check_record_name(p + "state_time"), initial_value=0.0, EGU="s", PREC=1,
            SCAN="Passive")
        if isinstance(device, SimSyncDevice):
            self._sim_records(p, device, builder)

    def _sim_records(self, p: str, device: SimSyncDevice, builder: Any) -> None:
        self.sim = device
        self.sim_locked = builder.boolOut(
            check_record_name(p + "sim:locked"), ZNAM="unlocked", ONAM="locked",
            initial_value=int(device.synced), always_update=True,
            validate=self.status.guarded(self._validate_sim_locked))
        self.sim_inject = builder.stringOut(
            check_record_name(p + "sim:inject_error"), initial_value="",
            always_update=True, validate=self.status.guarded(self._validate_inject))

    def publish(self) -> None:
        """Show the device's raw states and the time in the current state."""
        publish(self.pid_state, self.device.pid_state[:39])
        publish(self.tracker_state, self.device.tracker_state[:39])
        publish(self.state_time, round(self.controller.time_in_state(), 1))
        if self.controller.state is not SyncState.ERROR and self.status.clear.get() != 0:
            self.status.clear.set(0)  # a clear outside ERROR has nothing to do: handled

    def _clear(self) -> None:
        asyncio.get_running_loop().create_task(self.device.clear())
        self.controller.machine.clear()

    def _validate_stray(self, record: Any, value: int) -> bool:
        if self.loop_thread.is_current():
            return True  # the IOC resetting it
        if int(value) != 1:
            return True  # only 1 means something, as in syncster
        self.loop_thread.call(self._stray_requested)
        return True

    def _stray_requested(self) -> None:
        self.controller.request_stray()
        self.stray.set(0)

    def _validate_sim_locked(self, record: Any, value: int) -> bool:
        self.sim.pretend_synced(bool(value))
        return True

    def _validate_inject(self, record: Any, value: str) -> bool:
        if self.loop_thread.is_current() or not value:
            return True
        self.loop_thread.call(self.sim.inject_error, str(value))
        return True
