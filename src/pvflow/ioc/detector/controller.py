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
import collections
import enum
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping

from ..framework.runner import StartupFailure
from ..framework.state_machine import StateMachine
from ..framework.structured_logging import log_event
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
from .series import Series, SeriesCollector, SeriesError

log = logging.getLogger("pvflow.ioc.detector")

# Diss's short sequence counter wraps at 16.
SSQCNT_MODULO = 16
# Series ids whose late events are ignored after an error or cancel (bounded memory).
STALE_SERIES_KEPT = 64
# How much longer than a backend's own overdue time the generic check waits.
BACKEND_OVERDUE_GRACE = 5.0


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
        self._collector: SeriesCollector | None = None
        self._finished: Series | None = None
        self._stale: collections.deque[str] = collections.deque(maxlen=STALE_SERIES_KEPT)
        self._ssqcnt = -1
        self._data_hooks: list[DataHook] = []
        self._meta_hooks: list[ChannelMetaHook] = []
        self._acquire_lock = threading.Lock()
        self._acquire_pending_since: float | None = None
        self._acquire_deadline: float | None = None
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
        with self._acquire_lock:
            state = self.machine.state
            if state is not S.READY:
                return f"state is {state.name}; acquisitions start only in READY"
            if self._acquire_pending_since is not None:
                return "an acquisition is already starting"
            self._acquire_pending_since = time.monotonic()
            return None

    def start_acquire(self, duration: float, automatic: bool = False) -> None:
        """Send Acquire for a reservation made by :meth:`reserve_acquire` (loop thread)."""
        if self.machine.state is not S.READY or self.driver is None:
            with self._acquire_lock:
                self._acquire_pending_since = None
            log_event(log, logging.WARNING, "Acquire dropped", state=self.machine.state.name)
            return
        overdue = self._overdue()
        self._acquire_deadline = None
        if overdue is not None and self.config is not None:
            self._acquire_deadline = (time.monotonic() + duration * self.config.num_images
                                      + overdue)
        log_event(log, logging.DEBUG if automatic else logging.INFO, "Acquire",
                  duration=duration, automatic=automatic)
        self.driver.command(CommandRequest(Command.ACQUIRE, {"duration": float(duration)}))

    def _overdue(self) -> float | None:
        """Seconds past the exposure before ERROR; None: never (DISS_ACQUIRE_OVERDUE=0, or a
        backend that waits forever)."""
        own = self.settings.acquire_overdue
        backend = self.driver.backend if self.driver is not None else None
        theirs = backend.image_overdue() if hasattr(backend, "image_overdue") else None
        if not own or theirs is None:
            return own or None
        return None if math.isinf(theirs) else max(own, theirs + BACKEND_OVERDUE_GRACE)

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
        now = time.monotonic()
        if self.state is S.ACQUIRE and self._acquire_deadline is not None \
                and now > self._acquire_deadline:
            self._acquire_deadline = None
            self.machine.add_error(f"acquisition overdue: no end of series "
                                   f"{self._collector.uuid if self._collector else '?'} within "
                                   f"{self.settings.acquire_overdue} s of its expected end")
            return
        pending = self._acquire_pending_since
        overdue = self.settings.acquire_overdue
        if self.state is S.READY and pending is not None and overdue > 0 \
                and now - pending > overdue:
            self.machine.add_error(f"acquisition never started: no StartDataEvent within "
                                   f"{overdue} s of the Acquire command")
            return
        if self._poll_due() and self.driver is not None:
            self.driver.query(Query.GET_RUNTIME)

    # -- state entries ------------------------------------------------------------------------

    def _enter_warmup(self, previous: DetectorState) -> None:
        assert self.driver is not None
        self.driver.command(CommandRequest(Command.INITIALIZE))

    def _enter_ready(self, previous: DetectorState) -> None:
        self._collector = None
        with self._acquire_lock:
            self._acquire_pending_since = None
        self._acquire_deadline = None
        auto = self.settings.auto_acquire
        if auto is not None and self.reserve_acquire() is None:
            self.start_acquire(auto, automatic=True)

    def _enter_acquire(self, previous: DetectorState) -> None:
        with self._acquire_lock:
            self._acquire_pending_since = None

    def _enter_process(self, previous: DetectorState) -> DetectorState:
        series, self._finished = self._finished, None
        assert series is not None
        for hook in self._data_hooks:
            hook(series)
        return S.READY

    def _enter_cancel(self, previous: DetectorState) -> DetectorState:
        if self._collector is not None:
            self._stale.append(self._collector.uuid)
        self._collector = None
        return S.READY

    def _enter_error(self, previous: DetectorState) -> None:
        with self._acquire_lock:
            self._acquire_pending_since = None
        self._acquire_deadline = None
        if self._collector is not None:
            self._stale.append(self._collector.uuid)
            self._collector = None
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
                with self._acquire_lock:
                    self._acquire_pending_since = None
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
                self._ssqcnt = (self._ssqcnt + 1) % SSQCNT_MODULO
                self._collector = SeriesCollector(self.config, event, self._ssqcnt)
                self.machine.go(S.ACQUIRE)
            elif state is S.ACQUIRE:
                self._error(f"series {event.uuid} started while series "
                            f"{self._collector.uuid if self._collector else '?'} was running")
            else:
                self._stale.append(event.uuid)
                log_event(log, logging.DEBUG, "Ignored series start", state=state.name)
            return
        series_uuid = event.series_uuid  # type: ignore[union-attr]
        if series_uuid in self._stale:
            return  # the tail of a cancelled or failed series
        if state is not S.ACQUIRE or self._collector is None:
            if state is S.ERROR:
                self._stale.append(series_uuid)
                return
            self._error(f"{type(event).__name__} for series {series_uuid} in state "
                        f"{state.name}, outside any series")
            return
        try:
            if isinstance(event, ImageDataEvent):
                self._collector.add(event)
            elif isinstance(event, EndDataEvent):
                if series_uuid != self._collector.uuid:
                    raise SeriesError(f"end of series {series_uuid} during series "
                                      f"{self._collector.uuid}")
                self._finished = self._collector.finish()
                self._collector = None
                self.machine.go(S.PROCESS)
            elif isinstance(event, CancelDataEvent):
                self.machine.go(S.CANCEL)
        except SeriesError as exc:
            self._error(f"series {self._collector.uuid if self._collector else series_uuid}: "
                        f"{exc}")
