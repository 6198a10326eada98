"""The detector controller: Diss's state machine over the device event flow (no EPICS).

States and transitions are Diss's documented ones (ERROR is also reachable from CANCEL, as in
Diss's code; FAIL from anywhere)::

    INIT -> WARMUP | READY        WARMUP -> READY | ERROR       READY -> ACQUIRE | ERROR
    ACQUIRE -> PROCESS | CANCEL | ERROR                         PROCESS -> READY | ERROR
    CANCEL -> READY | ERROR       ERROR -> READY (after clear)

The controller enforces the protocol centrally, whatever the backend does: a series must be
Start, exactly ``num_images`` images, End (or Cancel); anything else is an ERROR naming what
went wrong. Errors before READY are fatal (no PV is served yet, so nobody could clear them).

Unlike Diss, the loop is event-driven: it wakes as soon as the device emits an event and
handles every queued event, so a series is published at the device's pace. The loop period
only paces idle queries (IsInitialized, GetConfig, GetRuntime) and the overdue check.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Mapping

from ..framework.runner import StartupFailure
from ..framework.state_machine import StateMachine
from ..framework.structured_logging import log_event
from .acquire_deadlines import AcquireDeadlines
from .config import DetectorSettings
from .device import DeviceDriver
from .events import (
    DATA_EVENTS,
    CancelDataEvent,
    ChannelStateEvent,
    Command,
    CommandRequest,
    CommandResultEvent,
    ConfigStateEvent,
    DeviceConfig,
    DeviceEvent,
    EndDataEvent,
    ErrorEvent,
    ImageDataEvent,
    InitStateEvent,
    MetaValue,
    Query,
    RuntimeStateEvent,
    StartDataEvent,
)
from .series import Series, SeriesError
from .series_tracker import SeriesTracker

log = logging.getLogger("pvflow.ioc.detector")


class DetectorState(enum.Enum):
    INIT = 0
    WARMUP = 1
    READY = 2
    ACQUIRE = 4
    PROCESS = 5
    CANCEL = 6
    ERROR = 7
    FAIL = 8


S = DetectorState
TRANSITIONS: Mapping[DetectorState, set[DetectorState]] = {
    S.INIT: {S.WARMUP, S.READY},
    S.WARMUP: {S.READY, S.ERROR},
    S.READY: {S.ACQUIRE, S.ERROR},
    S.ACQUIRE: {S.PROCESS, S.CANCEL, S.ERROR},
    S.PROCESS: {S.READY, S.ERROR},
    S.CANCEL: {S.READY, S.ERROR},
    S.ERROR: {S.READY},
    S.FAIL: set(),
}
STARTUP_STATES = frozenset({S.INIT, S.WARMUP})

DataHook = Callable[[Series], None]
ChannelMetaHook = Callable[[str, Mapping[str, MetaValue]], None]


class DetectorController:
    """Drives one backend through Diss's states; the EPICS side only uses its hooks and verbs."""

    def __init__(self, backend_class: type, environ: Mapping[str, str],
                 settings: DetectorSettings) -> None:
        self.settings = settings
        self._environ = environ
        self._backend_class = backend_class
        self.machine: StateMachine[DetectorState] = StateMachine(
            "detector", TRANSITIONS, initial=S.INIT, error=S.ERROR, fail=S.FAIL,
            recover=S.READY, logger=log)
        self.config: DeviceConfig | None = None
        self.driver: DeviceDriver | None = None
        self._wake_event: asyncio.Event | None = None
        self._series = SeriesTracker()
        self._deadlines = AcquireDeadlines(settings.acquire_overdue)
        self._data_hooks: list[DataHook] = []
        self._meta_hooks: list[ChannelMetaHook] = []
        self._next_poll = 0.0
        self._initialized = False
        m = self.machine
        m.on_step(S.INIT, self._poll_startup)
        m.on_enter(S.WARMUP, self._enter_warmup)
        m.on_step(S.WARMUP, self._poll_startup)
        m.on_enter(S.READY, self._enter_ready)
        m.on_step(S.READY, self._poll_running)
        m.on_enter(S.ACQUIRE, self._enter_acquire)
        m.on_step(S.ACQUIRE, self._poll_running)
        m.on_enter(S.PROCESS, self._enter_process)
        m.on_enter(S.CANCEL, self._enter_cancel)
        m.on_enter(S.ERROR, self._enter_error)
        m.on_step(S.ERROR, self._poll_running)

    # -- hooks for the application side -------------------------------------------------------

    @property
    def state(self) -> DetectorState:
        return self.machine.state

    def add_data_hook(self, hook: DataHook) -> None:
        """Call ``hook(series)`` in PROCESS for every complete series."""
        self._data_hooks.append(hook)

    def add_channel_meta_hook(self, hook: ChannelMetaHook) -> None:
        """Call ``hook(channel, meta)`` when the device reports channel parameters."""
        self._meta_hooks.append(hook)

    # -- verbs (acquire is thread-safe; the others run in the loop thread) --------------------

    def reserve_acquire(self) -> str | None:
        """Claim the right to start one acquisition; None if granted, else the reason why not.

        Called in the writer's thread, so a refused put is refused before it changes anything.
        """
        state = self.machine.state
        if state is not S.READY:
            return f"state is {state.name}; acquisitions start only in READY"
        if not self._deadlines.reserve():
            return "an acquisition is already starting"
        return None

    def start_acquire(self, duration: float, automatic: bool = False) -> None:
        """Send Acquire for a reservation made by :meth:`reserve_acquire` (loop thread)."""
        if self.machine.state is not S.READY or self.driver is None or self.config is None:
            self._deadlines.release()
            log_event(log, logging.WARNING, "Acquire dropped", state=self.machine.state.name)
            return
        backend = self.driver.backend
        self._deadlines.arm(duration * self.config.num_images,
                            backend.image_overdue() if hasattr(backend, "image_overdue")
                            else None)
        log_event(log, logging.DEBUG if automatic else logging.INFO, "Acquire",
                  duration=duration, automatic=automatic)
        self.driver.command(CommandRequest(Command.ACQUIRE, {"duration": float(duration)}))

    def cancel(self) -> None:
        """Ask the device to abort the running series (harmless when idle)."""
        if self.driver is not None:
            log_event(log, logging.INFO, "Cancel", state=self.machine.state.name)
            self.driver.command(CommandRequest(Command.CANCEL))

    def clear(self) -> None:
        """Acknowledge the errors: the device clears its own, ERROR moves on to READY."""
        if self.driver is not None:
            self.driver.command(CommandRequest(Command.CLEAR))
        self.machine.clear()

    def set_channel_meta(self, channel: str, **meta: MetaValue) -> None:
        """Pass channel parameters to the device; it reports back what is in effect."""
        if self.driver is not None:
            self.driver.command(CommandRequest(Command.CHANNEL_ADJUST,
                                               {"channel": channel, **meta}))

    # -- running ------------------------------------------------------------------------------

    async def start_up(self) -> None:
        """Create the backend and run until READY; StartupFailure when that cannot happen."""
        loop = asyncio.get_running_loop()
        self._wake_event = asyncio.Event()
        try:
            self.driver = DeviceDriver(self._backend_class, self._environ, loop, self._wake)
        except Exception as exc:  # noqa: BLE001 - a backend that cannot be built is fatal
            raise StartupFailure(f"backend {self._backend_class.__qualname__} could not be "
                                 f"created: {type(exc).__name__}: {exc}") from exc
        try:
            await asyncio.wait_for(self._loop(lambda: self.state not in STARTUP_STATES),
                                   self.settings.startup_timeout)
        except asyncio.TimeoutError:
            self.machine.fail(f"not READY after {self.settings.startup_timeout} s "
                              f"(still {self.state.name})")
        if self.machine.failed:
            raise StartupFailure(self.machine.failure or "FAIL during start-up")

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set or the machine fails."""
        assert self._wake_event is not None, "start_up() first"
        watcher = asyncio.ensure_future(stop.wait())
        watcher.add_done_callback(lambda _: self._wake())
        try:
            await self._loop(lambda: stop.is_set() or self.machine.failed)
        finally:
            watcher.cancel()

    async def close(self) -> None:
        if self.driver is not None:
            await self.driver.close()

    def _wake(self) -> None:
        if self._wake_event is not None:
            self._wake_event.set()

    async def _loop(self, done: Callable[[], bool]) -> None:
        assert self._wake_event is not None and self.driver is not None
        events = self.driver.events
        while not done():
            self._wake_event.clear()
            while events and not done():
                self._handle(events.popleft())
            if done():
                return
            self.machine.step()
            if done() or events:
                continue
            # Sleep until the device emits an event or the next idle poll is due.
            delay = max(0.001, self._next_poll - time.monotonic())
            try:
                await asyncio.wait_for(self._wake_event.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass

    # -- periodic steps -----------------------------------------------------------------------

    def _poll_due(self) -> bool:
        now = time.monotonic()
        if now < self._next_poll:
            return False
        self._next_poll = now + self.settings.loop_period
        return True

    def _poll_startup(self) -> None:
        if not self._poll_due():
            return
        assert self.driver is not None
        self.driver.query(Query.IS_INITIALIZED)
        if self._initialized:
            self.driver.query(Query.GET_CONFIG)

    def _poll_running(self) -> None:
        late = (self._deadlines.never_ended(self._series.running_uuid) if self.state is S.ACQUIRE
                else self._deadlines.never_started() if self.state is S.READY else None)
        if late is not None:
            self.machine.add_error(late)
            return
        # While the device clears, it still reports the errors being cleared: not new ones.
        if self._poll_due() and self.driver is not None and not self.driver.busy(Command.CLEAR):
            self.driver.query(Query.GET_RUNTIME)

    # -- state entries ------------------------------------------------------------------------

    def _enter_warmup(self, previous: DetectorState) -> None:
        assert self.driver is not None
        self.driver.command(CommandRequest(Command.INITIALIZE))

    def _enter_ready(self, previous: DetectorState) -> None:
        self._series.forget_running()
        self._deadlines.clear()
        auto = self.settings.auto_acquire
        if auto is not None and self.reserve_acquire() is None:
            self.start_acquire(auto, automatic=True)

    def _enter_acquire(self, previous: DetectorState) -> None:
        self._deadlines.release()

    def _enter_process(self, previous: DetectorState) -> DetectorState:
        series = self._series.take_finished()
        for hook in self._data_hooks:
            hook(series)
        return S.READY

    def _enter_cancel(self, previous: DetectorState) -> DetectorState:
        self._series.void()
        return S.READY

    def _enter_error(self, previous: DetectorState) -> None:
        self._deadlines.clear()
        self._series.void()
        if self.driver is not None and self.driver.busy(Command.ACQUIRE):
            # The series is void; stop the device producing more of it.
            self.driver.command(CommandRequest(Command.CANCEL))
        for number, error in enumerate(self.machine.errors):
            log_event(log, logging.ERROR, "Waiting for clear", error=error, number=number)

    # -- events -------------------------------------------------------------------------------

    def _error(self, message: str, fatal: bool = False) -> None:
        self.machine.add_error(message, fatal=fatal or self.state in STARTUP_STATES)

    def _handle(self, event: DeviceEvent) -> None:
        state = self.state
        if state is S.FAIL:
            return
        if isinstance(event, DATA_EVENTS):
            self._handle_data(event)
        elif isinstance(event, ErrorEvent):
            self._error(event.detail, fatal=event.fatal)
        elif isinstance(event, InitStateEvent):
            if state is S.INIT and not event.initialized:
                self.machine.go(S.WARMUP)
            elif state in STARTUP_STATES and event.initialized and not self._initialized:
                self._initialized = True
                log_event(log, logging.INFO, "Detector initialized")
                self.driver.query(Query.GET_CONFIG)  # type: ignore[union-attr]
        elif isinstance(event, ConfigStateEvent):
            self._handle_config(event.config)
        elif isinstance(event, RuntimeStateEvent):
            errors = event.runtime.errors
            if errors and state is not S.ERROR:
                self._error("device reports: " + "; ".join(errors))
        elif isinstance(event, ChannelStateEvent):
            for hook in self._meta_hooks:
                hook(event.channel, event.meta)
        elif isinstance(event, CommandResultEvent):
            if not event.success and event.command is Command.ACQUIRE and state is S.READY:
                self._deadlines.release()
        else:
            self._error(f"backend emitted {type(event).__name__}, which is not a device event")

    def _handle_config(self, config: DeviceConfig) -> None:
        if self.config is None:
            if self.state not in STARTUP_STATES:
                return
            self.config = config
            log_event(log, logging.INFO, "Received detector config",
                      channels=",".join(c.label for c in config.channels),
                      num_images=config.num_images,
                      image_size="x".join(map(str, config.image_size)), dtype=config.dtype)
            self.machine.go(S.READY)
        elif config != self.config:
            # Diss: the setup is quasi-static; a change needs a restart with a new setup.
            self._error("device configuration changed while running; restart the IOC")

    def _handle_data(self, event: DeviceEvent) -> None:
        state = self.state
        if isinstance(event, StartDataEvent):
            if state is S.READY:
                assert self.config is not None
                self._series.start(self.config, event)
                self.machine.go(S.ACQUIRE)
            elif state is S.ACQUIRE:
                self._error(f"series {event.uuid} started while series "
                            f"{self._series.running_uuid} was running")
            else:
                self._series.ignore(event.uuid)
                log_event(log, logging.DEBUG, "Ignored series start", state=state.name)
            return
        series_uuid = event.series_uuid  # type: ignore[union-attr]
        if self._series.is_ignored(series_uuid):
            return  # the tail of a cancelled or failed series
        running = self._series.running
        if state is not S.ACQUIRE or running is None:
            if state is S.ERROR:
                self._series.ignore(series_uuid)
                return
            self._error(f"{type(event).__name__} for series {series_uuid} in state "
                        f"{state.name}, outside any series")
            return
        try:
            if isinstance(event, ImageDataEvent):
                running.add(event)
            elif isinstance(event, EndDataEvent):
                if series_uuid != running.uuid:
                    raise SeriesError(f"end of series {series_uuid} during series "
                                      f"{running.uuid}")
                self._series.finish()
                self.machine.go(S.PROCESS)
            elif isinstance(event, CancelDataEvent):
                self.machine.go(S.CANCEL)
        except SeriesError as exc:
            self._error(f"series {running.uuid}: {exc}")
