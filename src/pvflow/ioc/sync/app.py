"""The sync IOC as an app of the IOC framework's runner (application layer).

PVs under ``SYNCSTER_PREFIX``: syncster's ``state``, ``error``, ``clear``, ``stray``; the
framework's ``error_text``; and for operators ``pid_state``, ``tracker_state`` (the raw
lock-box and tracker states) and ``state_time`` (seconds in the current state). With the
``sim`` backend, the test-only PVs ``sim:locked`` (0/1) and ``sim:inject_error`` (a message)
script the simulated device.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from ..framework.plugins import load_plugin
from ..framework.records import LoopThread, StatusRecords, check_record_name, publish
from ..framework.runner import EXIT_FAIL, EXIT_OK, run_ioc
from ..framework.settings import ConfigError, load_settings
from ..framework.structured_logging import configure_logging, log_event
from .backends.base import BUILTIN_BACKENDS, REQUIRED_METHODS
from .backends.sim import SimSyncDevice
from .config import SyncSettings
from .controller import SyncEngine, SyncState

logger = logging.getLogger("pvflow.ioc.sync")


class SyncApp:
    """Polls the device every ``SYNCSTER_POLL_PERIOD`` and steps the engine."""

    name = "sync"

    def __init__(self, settings: SyncSettings) -> None:
        self.settings = settings
        try:
            backend_class = load_plugin(settings.backend_spec, builtins=BUILTIN_BACKENDS,
                                        group="pvflow.ioc.sync.backends",
                                        required=REQUIRED_METHODS)
            self.device: Any = backend_class(settings)
        except ValueError as error:
            raise ConfigError(f"SYNCSTER_BACKEND/SYNCSTER_RRE_PORT: {error}") from None
        self.engine = SyncEngine(self.device, auto_stray=settings.auto_stray,
                                 sync_timeout=settings.timeout,
                                 clock=time.monotonic)
        self.records: dict[str, Any] = {}
        self.status: StatusRecords | None = None
        self.loop_thread: LoopThread | None = None

    async def prepare(self) -> None:
        """Open the device; a failure shows as ERROR once the PVs are up, not as a crash."""
        await self.device.open()

    def required_array_bytes(self) -> int:
        return 1024

    def build_records(self, loop_thread: LoopThread) -> None:
        from softioc import builder

        self.loop_thread = loop_thread
        p = self.settings.prefix
        self.status = StatusRecords(p, self.engine.machine, loop_thread,
                                    on_clear=self._clear, logger=logger, clear_values={1})
        self.records["stray"] = builder.longOut(
            check_record_name(p + "stray"), initial_value=0, always_update=True,
            validate=self.status.guarded(self._validate_stray))
        self.records["pid_state"] = builder.stringIn(
            check_record_name(p + "pid_state"), initial_value=self.device.pid_state,
            SCAN="Passive")
        self.records["tracker_state"] = builder.stringIn(
            check_record_name(p + "tracker_state"), initial_value=self.device.tracker_state,
            SCAN="Passive")
        self.records["state_time"] = builder.aIn(
            check_record_name(p + "state_time"), initial_value=0.0, EGU="s", PREC=1,
            SCAN="Passive")
        if isinstance(self.device, SimSyncDevice):
            self.records["sim_locked"] = builder.boolOut(
                check_record_name(p + "sim:locked"), ZNAM="unlocked", ONAM="locked",
                initial_value=int(self.device.synced), always_update=True,
                validate=self.status.guarded(self._validate_sim_locked))
            self.records["sim_inject"] = builder.stringOut(
                check_record_name(p + "sim:inject_error"), initial_value="",
                always_update=True, validate=self.status.guarded(self._validate_inject))

    def started(self) -> None:
        log_event(logger, logging.INFO, "sync IOC ready", prefix=self.settings.prefix,
                  backend=self.settings.backend_spec, port=self.settings.rre_port or "",
                  auto_stray=self.settings.auto_stray, sync_timeout=self.settings.sync_timeout)

    async def run(self, stop: asyncio.Event) -> int:
        period = self.settings.poll_period
        while not stop.is_set():
            await self.device.update()
            self.engine.step()
            self._publish()
            if self.engine.machine.failed:
                return EXIT_FAIL
            try:
                await asyncio.wait_for(stop.wait(), period)
            except TimeoutError:
                pass
        return EXIT_OK

    async def close(self) -> None:
        await self.device.close()

    # --------------------------------------------------------------- helpers
    def _publish(self) -> None:
        publish(self.records["pid_state"], self.device.pid_state[:39])
        publish(self.records["tracker_state"], self.device.tracker_state[:39])
        publish(self.records["state_time"], round(self.engine.time_in_state(), 1))
        if self.status is not None and self.engine.state is not SyncState.ERROR \
                and self.status.clear.get() != 0:
            self.status.clear.set(0)  # a clear outside ERROR has nothing to do: handled

    def _clear(self) -> None:
        asyncio.get_running_loop().create_task(self.device.clear())
        self.engine.machine.clear()

    def _validate_stray(self, record: Any, value: int) -> bool:
        if self.loop_thread is None or self.loop_thread.is_current():
            return True  # the IOC resetting it
        if int(value) != 1:
            return True  # only 1 means something, as in syncster
        self.loop_thread.call(self._stray_requested)
        return True

    def _stray_requested(self) -> None:
        self.engine.request_stray()
        self.records["stray"].set(0)

    def _validate_sim_locked(self, record: Any, value: int) -> bool:
        self.device.pretend_synced(bool(value))
        return True

    def _validate_inject(self, record: Any, value: str) -> bool:
        if self.loop_thread is None or self.loop_thread.is_current() or not value:
            return True
        self.loop_thread.call(self.device.inject_error, str(value))
        return True


def make_app(environ: Mapping[str, str]) -> SyncApp:
    """Read ``SYNCSTER_*`` from ``environ``, configure logging, build the app."""
    settings = load_settings(SyncSettings, environ)
    configure_logging(settings.log_level)
    return SyncApp(settings)


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run the IOC; the exit code of the framework's runner (2 on a bad configuration)."""
    return run_ioc(make_app, environ)
