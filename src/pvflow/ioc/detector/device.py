"""The device side of the event flow: requests in, backend calls, events out (no EPICS).

The controller never calls a backend directly. It sends requests; this driver answers queries
at once and runs each command as an asyncio task, one task per command kind (a new command of
a kind waits for the previous one, so two acquisitions never overlap). Whatever a backend does
wrong becomes an event, never a hung or crashed IOC:

- a command that raises -> ``ErrorEvent`` naming the command (``fatal`` for ``BackendFailure``);
- a query that raises or answers with the wrong type -> ``ErrorEvent``.

Events emitted from other threads are handed to the loop thread; the controller is woken
whenever an event arrives, so a series flows at the device's pace, not the loop period's.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
from collections.abc import Callable, Mapping

from ..framework.structured_logging import log_event
from .backends.base import BackendFailure
from .events import (
    Command,
    CommandRequest,
    CommandResultEvent,
    ConfigStateEvent,
    DeviceConfig,
    DeviceEvent,
    DeviceRuntime,
    ErrorEvent,
    InitStateEvent,
    Query,
    RuntimeStateEvent,
)

log = logging.getLogger("pvflow.ioc.detector.device")


class DeviceDriver:
    """Runs one backend: answers queries, runs commands as tasks, queues its events."""

    def __init__(self, backend_class: type, environ: Mapping[str, str],
                 loop: asyncio.AbstractEventLoop, wake: Callable[[], None]) -> None:
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._wake = wake
        self.events: collections.deque[DeviceEvent] = collections.deque()
        self._tasks: dict[Command, asyncio.Task[None]] = {}
        self.backend = backend_class(self.emit, environ)

    # -- device -> controller ----------------------------------------------------------------

    def emit(self, event: DeviceEvent) -> None:
        """Queue ``event`` for the controller (safe from any thread)."""
        if threading.get_ident() == self._loop_thread:
            self.events.append(event)
            self._wake()
        else:
            self._loop.call_soon_threadsafe(self.emit, event)

    # -- controller -> device ----------------------------------------------------------------

    def query(self, query: Query) -> None:
        """Answer ``query`` now; the answer (or an ErrorEvent) is queued as an event."""
        try:
            if query is Query.IS_INITIALIZED:
                event: DeviceEvent = InitStateEvent(bool(self.backend.is_initialized()))
            elif query is Query.GET_CONFIG:
                config = self.backend.config()
                if config is None:
                    return
                if not isinstance(config, DeviceConfig):
                    raise TypeError(f"config() returned {type(config).__name__}, "
                                    "not DeviceConfig")
                event = ConfigStateEvent(config)
            else:
                runtime = self.backend.runtime()
                if not isinstance(runtime, DeviceRuntime):
                    raise TypeError(f"runtime() returned {type(runtime).__name__}, "
                                    "not DeviceRuntime")
                event = RuntimeStateEvent(runtime)
        except Exception as exc:  # noqa: BLE001 - a backend bug becomes an error event
            event = ErrorEvent(f"query {query.value} failed: {type(exc).__name__}: {exc}",
                               fatal=isinstance(exc, BackendFailure))
        self.emit(event)

    def command(self, request: CommandRequest) -> None:
        """Start ``request`` as a task after the previous command of its kind."""
        previous = self._tasks.get(request.command)
        task = self._loop.create_task(self._run(request, previous),
                                      name=f"backend-{request.command.value}")
        self._tasks[request.command] = task

    def busy(self, command: Command) -> bool:
        task = self._tasks.get(command)
        return task is not None and not task.done()

    async def _run(self, request: CommandRequest, previous: asyncio.Task[None] | None) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait({previous})
        command, params = request.command, dict(request.params)
        method = {
            Command.INITIALIZE: self.backend.initialize,
            Command.ACQUIRE: self.backend.acquire,
            Command.CANCEL: self.backend.cancel,
            Command.CLEAR: self.backend.clear,
            Command.CHANNEL_ADJUST: self.backend.adjust_channel,
        }[command]
        log_event(log, logging.DEBUG, "Command", command=command.value, params=params)
        try:
            await method(**params)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a backend failure becomes an error event
            log.debug("backend command raised", exc_info=True)
            detail = f"backend {command.value} failed: {type(exc).__name__}: {exc}"
            self.emit(CommandResultEvent(command, False, detail))
            self.emit(ErrorEvent(detail, fatal=isinstance(exc, BackendFailure)))
            return
        self.emit(CommandResultEvent(command, True))

    async def close(self) -> None:
        """Stop running commands, then let the backend release the device."""
        for task in self._tasks.values():
            task.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks.values()), timeout=5)
        await self.backend.close()
