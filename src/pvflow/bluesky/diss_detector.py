"""`DissDetector`: any Diss-compatible detector IOC as an ophyd-async ``StandardDetector``.

    detector = DissDetector(context, "DISS:det:", "/data/run42", name="det")
    RE(bp.count([detector], 5))                                  # step scan
    RE(fly_detector(detector, series=100, duration=0.01))        # fly scan

Why ophyd-async and not ophyd v1: a Diss IOC writes no files, so the writer is ours, running
beside the acquisition; ophyd-async's split into trigger, acquire and data logic fits that
exactly (the data logic owns the HDF5 file and counts what it wrote), and its
``StandardDetector`` already turns those counts into ``StreamResource``/``StreamDatum``
documents for step scans and fly scans alike. ophyd v1 would need the same parts by hand.

One bluesky collection is one series (one ``acquire``): per channel a data key
``{name}-{channel}`` of shape ``(num_images, width, height)``. The images go into an HDF5
file (:class:`pvflow.storage.series_file.SeriesFile`) as the IOC publishes them, from
monitors (:class:`pvflow.storage.detector_source.DetectorSource`); events carry only the
references, so ``TiledWriter`` registers the file and a Tiled client reads the images back
as arrays. A missing or partial series stops the writer and fails the scan, naming it.
pvflow's own detector IOC writes the same file itself when asked (:mod:`.ioc_file`): no image
then crosses the network, and the data logic only counts what the IOC wrote.

A series is counted (its ``StreamDatum`` may go out) as soon as it is whole, so the next point
need not wait; the next series can still condemn it (an incomplete series means the IOC's
server sent the one before it with newer arrays, see :class:`IncompleteSeriesError`). The
writer then takes that series back out of the file and fails the scan naming it: no document
is left pointing at images that are not that series'.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from bluesky.protocols import StreamAsset
from event_model import ComposeStreamResource, DataKey
from ophyd_async.core import (
    DEFAULT_TIMEOUT,
    DetectorAcquireLogic,
    DetectorDataLogic,
    DetectorTriggerLogic,
    StandardDetector,
    StreamableDataProvider,
    TriggerInfo,
    soft_signal_r_and_setter,
)

from ..context import Context
from ..storage.detector_source import DetectorLayout, DetectorSource, read_layout
from ..storage.series import IncompleteSeriesError, SeriesData
from ..storage.series_file import SeriesFile
from .ioc_file import IocFile, ioc_file_dtype

HDF5_MIMETYPE = "application/x-hdf5"
# How long a counted series waits for the next one to start before it is written anyway.
WRITE_DELAY_SECONDS = 0.05
SAVING = ("auto", "ioc", "client")


class DetectorError(RuntimeError):
    """The detector refused to acquire or its data could not be saved; names the PV."""


class DissTriggerLogic(DetectorTriggerLogic):
    """Internal triggering: ``livetime`` is the IOC's ``duration`` (seconds per image),
    each exposure one series."""

    def __init__(self, context: Context, layout_of: Any) -> None:
        self.context = context
        self.layout_of = layout_of
        self.series = 1

    async def prepare_internal(self, num: int, livetime: float, deadtime: float) -> None:
        self.series = num
        if livetime:
            await self.context.put_async(self.layout_of().pv("duration"), livetime)

    async def default_trigger_info(self) -> TriggerInfo:
        return TriggerInfo()


class DissAcquireLogic(DetectorAcquireLogic):
    """Acquires the prepared number of series back to back: ``acquire`` 1, then its fall."""

    def __init__(self, context: Context, layout_of: Any, trigger: DissTriggerLogic) -> None:
        self.context = context
        self.layout_of = layout_of
        self.trigger = trigger
        self._task: asyncio.Task[None] | None = None

    async def start_acquiring(self) -> None:
        self._task = asyncio.ensure_future(self._acquire(self.trigger.series))

    async def _acquire(self, count: int) -> None:
        layout: DetectorLayout = self.layout_of()
        falls: asyncio.Queue[int] = asyncio.Queue()
        subscription = self.context.subscribe(layout.pv("acquire"), falls.put_nowait,
                                              form="value", loop=asyncio.get_running_loop())
        try:
            await falls.get()  # the current value: subscribed
            for _ in range(count):
                await self._check_ready(layout)
                await self.context.put_async(layout.pv("acquire"), 1)
                seen_busy = False
                while True:
                    value = int(await falls.get())
                    if value:
                        seen_busy = True
                    elif seen_busy:
                        break
        finally:
            subscription.close()

    async def _check_ready(self, layout: DetectorLayout) -> None:
        state = await self.context.get_async(layout.pv("state"), as_string=True)
        if state != "READY":
            error = await self.context.get_async(layout.pv("error"), as_string=True)
            raise DetectorError(f"{layout.pv('state')} is {state}, not READY ({error})")

    async def wait_for_idle(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            await task

    async def ensure_stopped(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            layout = self.layout_of()
            if int(await self.context.get_async(layout.pv("acquire"))):
                await self.context.put_async(layout.pv("cancel"), 1)
        self._task = None


class SeriesFileProvider(StreamableDataProvider):
    """Stream documents for the series in one HDF5 file (written here by a
    :class:`SeriesWriter`, or by the IOC: :class:`~pvflow.bluesky.ioc_file.IocFile`), as
    ``written_signal`` counts them."""

    def __init__(self, layout: DetectorLayout, path: Path, dtype: np.dtype,
                 written_signal: Any, raise_failure: Callable[[], None],
                 datakey_name: str) -> None:
        self.layout = layout
        self.raise_failure = raise_failure
        self.collections_written_signal = written_signal
        self.keys = {c: f"{datakey_name}-{c}" for c in layout.channels}
        uri = path.resolve().as_uri().replace("file:///", "file://localhost/", 1)
        shape = (layout.num_images, *layout.image_shape)
        compose = ComposeStreamResource()
        self.bundles = [compose(mimetype=HDF5_MIMETYPE, uri=uri, data_key=key,
                                parameters={"dataset": f"/images/{channel}",
                                            "chunk_shape": (1, *shape[1:]), "swmr": False},
                                uid=None, validate=True)
                        for channel, key in self.keys.items()]
        self.shape = shape
        self.dtype = dtype
        self.emitted = 0

    async def make_datakeys(self, collections_per_event: int) -> dict[str, DataKey]:
        n, width, height = self.shape
        return {key: DataKey(source=self.layout.pv(f"{channel}:image"),
                             shape=[collections_per_event * n, width, height], dtype="array",
                             dtype_numpy=self.dtype.str, external="STREAM:")
                for channel, key in self.keys.items()}

    async def make_stream_docs(self, collections_written: int, collections_per_event: int
                               ) -> AsyncIterator[StreamAsset]:
        self.raise_failure()
        indices = collections_written // collections_per_event
        if indices and not self.emitted:
            for bundle in self.bundles:
                yield "stream_resource", bundle.stream_resource_doc
        if indices > self.emitted:
            span = {"start": self.emitted, "stop": indices}
            self.emitted = indices
            for bundle in self.bundles:
                yield "stream_datum", bundle.compose_stream_datum(span)  # type: ignore[arg-type]


def _condemns(error: IncompleteSeriesError, numid: int) -> bool:
    """An incomplete series condemns the one before it (see :class:`IncompleteSeriesError`);
    one without its ``numid`` is taken to be the next."""
    return error.numid is None or error.numid == numid + 1


class SeriesWriter:
    """A thread appending every series of the IOC to one HDF5 file, counting them in a
    signal on the RunEngine's loop.

    A thread, not a process, by measurement: h5py holds the GIL while it writes, but running
    ``pvflow save`` beside the RunEngine made ``bp.count`` of 1 Mpixel images slower on two
    cores (2.3-3.1x the time without saving at 5 ms exposures, against 1.3-1.8x here then,
    1.3-1.4x now that the write waits for the next exposure), as the
    extra process competes with the IOC and the Tiled server.
    """

    def __init__(self, context: Context, layout: DetectorLayout, path: Path,
                 dtype: np.dtype | None, loop: asyncio.AbstractEventLoop,
                 compression: str | None, image_context: Context | None) -> None:
        self.layout = layout
        self.path = path
        self.loop = loop
        self.dtype = dtype
        self.compression = compression
        self.file: SeriesFile | None = None
        self.written_signal, self._set_written = soft_signal_r_and_setter(int, 0)
        self.source = DetectorSource(context, layout, image_context=image_context).start()
        self.failure: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pvflow-save-{path.name}",
                                        daemon=True)

    def start(self, timeout: float) -> None:
        """Subscribe, then open the file: without a ``dtype``, the pixel type is that of the
        first image the monitor brought (no separate read of a whole image)."""
        self.source.wait_subscribed(timeout)
        dtype = self.dtype if self.dtype is not None else self.source.image_dtype
        if dtype is None:  # wait_subscribed returns only once every image monitor spoke
            raise DetectorError(f"{self.layout.prefix}: no image came to learn the pixel type")
        layout = self.layout
        self.file = SeriesFile(self.path, layout.channels, layout.image_shape, dtype,
                               compression=self.compression, params=layout.params,
                               attrs={"detector_prefix": layout.prefix})
        self._thread.start()

    def _run(self) -> None:
        # A series counts as written once it is whole and in this thread's hands, so the
        # RunEngine's next point overlaps the write; the thread writes it before it looks at
        # the stop flag, so unstage returns with every counted series in the file. h5py holds
        # the GIL through a write, so the write waits until the next series has started
        # (the RunEngine then waits for the exposure): written at once, it held up the
        # RunEngine's loop, woken for the count, then its next point.
        assert self.file is not None, "start() first"
        try:
            written = self.file.series
            while not self._stop.is_set():
                series = self._next_series()
                if series is not None:
                    written += 1
                    self.loop.call_soon_threadsafe(self._set_written, written)
                    self._write_after_next_start(series)
        except BaseException as exc:  # noqa: BLE001 - handed to the RunEngine's side
            self.failure = exc

    def _next_series(self) -> SeriesData | None:
        try:
            return self.source.next_series(timeout=0.2)
        except IncompleteSeriesError as exc:
            counted = self.source.last_numid
            if counted is not None and _condemns(exc, counted):
                assert self.file is not None
                self.file.retract_last()
                raise self._unreliable(counted, exc) from exc
            raise

    def _write_after_next_start(self, series: SeriesData) -> None:
        """Append ``series`` once the next one has started (or after a short wait); a
        counted series is written whatever the wait met, unless the next one condemns it."""
        assert self.file is not None
        try:
            self.source.wait_for_next_start(WRITE_DELAY_SECONDS)
        except IncompleteSeriesError as exc:
            if _condemns(exc, series.numid):
                raise self._unreliable(series.numid, exc) from exc
            self.file.append(series)
            raise
        except BaseException:
            self.file.append(series)
            raise
        self.file.append(series)

    def _unreliable(self, numid: int, cause: IncompleteSeriesError) -> DetectorError:
        return DetectorError(
            f"series {numid} was counted, but its images cannot be vouched for: {cause}, "
            f"so the IOC's server sent series {numid}'s array and string updates after the "
            f"next series had replaced them; series {numid} is not in {self.path}")

    def raise_failure(self) -> None:
        if self.failure is not None:
            raise DetectorError(f"{self.layout.prefix}: saving to {self.path} stopped: "
                                f"{self.failure}") from self.failure

    async def finish(self) -> None:
        """Stop, with every counted series in the file; raises if saving had failed."""
        await asyncio.to_thread(self.stop)
        self.raise_failure()

    def stop(self) -> None:
        self._stop.set()
        self.source.interrupt()
        if self._thread.is_alive():
            self._thread.join(10)
        self.source.close()
        if self.file is not None:
            self.file.close()


class DissDataLogic(DetectorDataLogic):
    """One HDF5 file per prepare, in ``directory``: ``{datakey}-{uuid}.h5``, written by the
    IOC when it can (``saving``: ``"auto"``, ``"ioc"`` or ``"client"``)."""

    def __init__(self, context: Context, layout_of: Any, directory: Path,
                 compression: str | None, dtype: str | None,
                 image_context: Context | None, saving: str) -> None:
        if saving not in SAVING:
            raise ValueError(f"saving={saving!r}: use one of {', '.join(SAVING)}")
        self.context = context
        self.image_context = image_context
        self.dtype = dtype
        self.layout_of = layout_of
        self.directory = Path(directory)
        self.compression = compression
        self.saving = saving
        self.writer: SeriesWriter | IocFile | None = None
        self._probed: tuple[DetectorLayout, str | None] | None = None

    async def prepare_unbounded(self, datakey_name: str) -> StreamableDataProvider:
        await self.stop()
        layout: DetectorLayout = self.layout_of()
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{datakey_name}-{uuid.uuid4()}.h5"
        ioc_dtype = await self._ioc_dtype(layout)
        if ioc_dtype is not None:
            file = IocFile(self.context, layout, path, self.compression)
            self.writer = file
            await file.start(DEFAULT_TIMEOUT)
            return SeriesFileProvider(layout, path, ioc_dtype, file.written_signal,
                                      file.raise_failure, datakey_name)
        dtype = np.dtype(self.dtype) if self.dtype else None
        writer = SeriesWriter(self.context, layout, path, dtype,
                              asyncio.get_running_loop(), self.compression,
                              self.image_context)
        self.writer = writer
        await asyncio.to_thread(writer.start, DEFAULT_TIMEOUT)
        assert writer.file is not None, "the writer opens its file when it starts"
        return SeriesFileProvider(layout, path, writer.file.dtype, writer.written_signal,
                                  writer.raise_failure, datakey_name)

    async def _ioc_dtype(self, layout: DetectorLayout) -> np.dtype | None:
        """The IOC's file pixel type when the IOC is to write the file, else None."""
        if self.saving == "client":
            return None
        if self._probed is None or self._probed[0] is not layout:  # once per connect
            self._probed = (layout, await ioc_file_dtype(self.context, layout, timeout=2.0))
        found = self._probed[1]
        if found is None or (self.dtype and np.dtype(self.dtype) != np.dtype(found)):
            if self.saving == "ioc":
                raise DetectorError(f"{layout.pv('file:dtype')}: the IOC cannot write "
                                    f"{self.dtype or 'its images'} to files (a Diss IOC has "
                                    "no file writer): use saving='client'")
            return None
        return np.dtype(found)

    async def stop(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            await writer.finish()


class DissDetector(StandardDetector):
    """A Diss-compatible detector IOC; images saved under ``directory`` as HDF5 (``None``:
    acquire only, nothing saved).

    ``saving="auto"`` lets an IOC with a file writer (``pvflow ioc detector``'s ``file:``
    PVs) write the files itself, so no image crosses the network: ``directory`` must then be
    a path the IOC's host writes and this process reads (the same machine, or a shared
    filesystem, as with areaDetector). A Diss IOC has none: the images then come here by
    monitors and are written here (``saving="client"`` always does that, ``"ioc"`` never).

    ``channels`` default to the IOC's ``channels`` PV (give them for Diss itself); ``pva``
    reads over pvAccess. The file's pixel type is the waveform's FTVL (over CA an unsigned
    short image is asked for as SHORT and read back as ``uint16``, half the bytes of the LONG
    CA would send); ``dtype`` stores another (a pixel that does not fit fails the scan). At
    high rates over CA, give the images a circuit of their own (``image_context``, a second Context): CA servers
    sample arrays and strings when they send them, so the small PVs of a series must not
    queue behind a big image.
    """

    def __init__(self, context: Context, prefix: str, directory: str | Path | None, *,
                 channels: Sequence[str] | None = None, pva: bool = False,
                 compression: str | None = None, dtype: str | None = None,
                 image_context: Context | None = None, saving: str = "auto",
                 name: str = "") -> None:
        self.context = context
        self.prefix = prefix
        self._channels = tuple(channels or ())
        self._pva = pva
        self._layout: DetectorLayout | None = None
        trigger = DissTriggerLogic(context, self.layout)
        super().__init__(name=name)
        self.add_detector_logics(trigger, DissAcquireLogic(context, self.layout, trigger))
        if directory is not None:
            self.add_detector_logics(DissDataLogic(context, self.layout, Path(directory),
                                                   compression, dtype, image_context,
                                                   saving))

    def layout(self) -> DetectorLayout:
        if self._layout is None:
            raise DetectorError(f"{self.name}: connect() first (the IOC at {self.prefix})")
        return self._layout

    async def connect(self, mock: Any = False, timeout: float = DEFAULT_TIMEOUT,
                      force_reconnect: bool = False) -> None:
        if self._layout is None or force_reconnect:
            self._layout = await asyncio.to_thread(
                read_layout, self.context, self.prefix, self._channels or None,
                pva=self._pva, timeout=timeout)
        await super().connect(mock=mock, timeout=timeout, force_reconnect=force_reconnect)
