"""One HDF5 file written by the detector IOC itself (the ``file:`` PVs of ``pvflow ioc
detector``, see docs/ioc.md), watched from the RunEngine's loop.

The client never receives an image: it names the file, starts the capture, counts the
IOC's ``file:written`` and closes the capture at the end. The file has the layout of
:mod:`pvflow.storage.series_file`, so the same stream documents describe it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ophyd_async.core import soft_signal_r_and_setter

from ..context import Context
from ..errors import PVFlowError
from ..storage.detector_source import DetectorLayout

WATCHED = ("open", "captured", "written", "capture", "message")
# How long closing may take: the IOC writes what it has queued first.
CLOSE_TIMEOUT = 60.0


class IocFileError(RuntimeError):
    """The IOC did not open the file, or stopped writing it before it was asked to."""


async def ioc_file_dtype(context: Context, layout: DetectorLayout, timeout: float) -> str | None:
    """The pixel type the IOC writes its files in; None when it has no file writer (Diss)."""
    try:
        return str(await context.get_async(layout.pv("file:dtype"), timeout=timeout,
                                           as_string=True))
    except PVFlowError:
        return None


class IocFile:
    """Capture of the IOC's series into ``path`` (a path the IOC's host can write).

    ``written_signal`` counts the series the IOC took for the file (``file:captured``:
    a step scan need not wait for the disk); :meth:`finish` fails unless the IOC then wrote
    every one of them. It ignores the count of an earlier capture, which the IOC resets to 0
    as the capture begins.
    """

    def __init__(self, context: Context, layout: DetectorLayout, path: Path,
                 compression: str | None) -> None:
        self.context = context
        self.layout = layout
        self.path = path
        self.compression = compression or "none"
        self.written_signal, self._set_written = soft_signal_r_and_setter(int, 0)
        self.failure: str | None = None
        self._values: dict[str, Any] = {}
        self._first = {key: asyncio.Event() for key in WATCHED}
        self._opened, self._closed = asyncio.Event(), asyncio.Event()
        self._requested = self._closing = self._counting = False
        self._subscriptions: list[Any] = []
        self._changed = {"open": self._open_changed, "capture": self._capture_changed,
                         "captured": self._captured_changed}

    async def start(self, timeout: float) -> None:
        """Subscribe, name the file and capture; :class:`IocFileError` with the IOC's reason
        if it does not open."""
        loop = asyncio.get_running_loop()
        for key in WATCHED:
            self._subscriptions.append(self.context.subscribe(
                self.layout.pv(f"file:{key}"), self._updater(key), form="value", loop=loop,
                as_string=key == "message", connection_callback=self._connection))
        try:
            await self._within(asyncio.gather(*(e.wait() for e in self._first.values())),
                               timeout, "file: PVs to answer")
            await self.context.put_async(self.layout.pv("file:path"), str(self.path))
            await self.context.put_async(self.layout.pv("file:compression"), self.compression)
            self._requested = True
            await self.context.put_async(self.layout.pv("file:capture"), 1)
            await self._within(self._wait_either(self._opened, self._closed), timeout,
                               f"{self.path} to open")
            if not self._opened.is_set():
                raise IocFileError(f"{self.layout.pv('file:capture')}: {self.failure}")
        except BaseException:
            self.close_subscriptions()
            raise

    async def _within(self, waiting: Any, timeout: float, what: str) -> None:
        try:
            await asyncio.wait_for(waiting, timeout)
        except asyncio.TimeoutError:
            raise IocFileError(f"{self.layout.prefix}: waited {timeout:g} s for {what}"
                               + (f" ({self.failure})" if self.failure else "")) from None

    @staticmethod
    async def _wait_either(*events: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(e.wait()) for e in events]
        _, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    def _updater(self, key: str) -> Any:
        def update(value: Any) -> None:
            if isinstance(value, BaseException):
                self._fail(f"{self.layout.pv(f'file:{key}')}: {value}")
                return
            self._values[key] = value  # all kept: a failure's message reads them
            first = not self._first[key].is_set()
            self._first[key].set()
            changed = self._changed.get(key)
            if changed is not None and not first:
                changed(value)

        return update

    def _open_changed(self, value: Any) -> None:
        if int(value):
            self._opened.set()
        elif self._opened.is_set():
            message = str(self._values.get("message") or "")  # reset as the file opened
            if message or not self._closing:
                self._fail(message or f"the IOC closed the file unasked (did it stop?) after "
                           f"writing {self._values.get('written')} series")
            self._closed.set()

    def _capture_changed(self, value: Any) -> None:
        if self._requested and not int(value) and not self._opened.is_set():
            self._fail(str(self._values.get("message") or "the IOC refused to capture"))
            self._closed.set()

    def _captured_changed(self, value: Any) -> None:
        count = int(value)
        self._counting = self._counting or count == 0
        if self._counting:
            self._set_written(count)

    def _connection(self, connected: bool) -> None:
        if not connected and self._requested and not self._closed.is_set():
            self._fail(f"lost the connection to {self.layout.prefix} while it wrote "
                       f"{self.path}: the file holds the series counted before")
            self._closed.set()

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason

    def raise_failure(self) -> None:
        if self.failure is not None and not self._closing:
            raise IocFileError(f"{self.layout.prefix}: saving to {self.path} stopped: "
                               f"{self.failure}")

    async def finish(self) -> None:
        """Close the capture once the IOC has written what it queued; raises if it stopped
        short."""
        closing_early = self._closed.is_set()
        self._closing = True
        try:
            if not closing_early:
                await self.context.put_async(self.layout.pv("file:capture"), 0)
                await asyncio.wait_for(self._closed.wait(), CLOSE_TIMEOUT)
        finally:
            self.close_subscriptions()
        if self.failure is None:  # read, not the monitors: they may come in another order
            await self._check_all_written()
        if self.failure is not None:
            raise IocFileError(f"{self.layout.prefix}: saving to {self.path} stopped: "
                               f"{self.failure}")

    async def _check_all_written(self) -> None:
        names = [self.layout.pv("file:captured"), self.layout.pv("file:written")]
        values = await self.context.get_many_async(names)
        failed = [f"{name}: {value}" for name, value in values.items()
                  if isinstance(value, BaseException)]
        if failed:
            self._fail("; ".join(failed))
            return
        captured, written = (int(values[name]) for name in names)
        if written != captured:
            self._fail(f"the IOC took {captured} series for the file and wrote {written}")

    def close_subscriptions(self) -> None:
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions.clear()
