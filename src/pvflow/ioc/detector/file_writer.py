"""The detector's series written to HDF5 by the IOC, as areaDetector's file plugins do (no
EPICS here: :mod:`.file_records` binds it to the ``file:`` PVs).

Why in the IOC: a client that saves must first receive every image, and a 1 Mpixel image costs
the IOC's pvAccess server 2-2.5 ms of CPU to send and the client as much to take in. Written
here, an image never crosses the network. The file must then lie where its readers can reach
it (the same machine or a shared filesystem), as an areaDetector file does.

One thread per open file hands series, in the order the IOC published them, to the writer
process (:mod:`.file_process`). A series that cannot be written (the disk refuses it, or the
writer falls more than :data:`QUEUE_BYTES` behind) stops the capture: the file keeps every
series before it, whole, and the reason names the first series not saved. Nothing is dropped
without that message.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ...storage.series import SeriesData
from .file_process import SeriesFileProcess

# Series waiting for the disk, in bytes: beyond this the writer has fallen behind for good.
QUEUE_BYTES = 512 * 1024 * 1024

Opened = Callable[[], None]
Counted = Callable[[int], None]
Closed = Callable[[str], None]


class FileWriter:
    """Appends the series handed to :meth:`submit` to the file :meth:`open` named.

    From the writer's thread: ``on_opened()`` once the file is open, ``on_taken(count)`` as
    it takes each series to write (series taken since the capture began), ``on_written(count)``
    after each append, ``on_closed(reason)`` once the file is closed, ``reason`` empty unless
    series were not saved (or the file never opened). The thread waits for series most of the
    time, so what it posts costs the loop thread nothing.
    """

    def __init__(self, channels: Sequence[str], image_shape: tuple[int, int], dtype: np.dtype,
                 series_bytes: int, on_opened: Opened, on_taken: Counted,
                 on_written: Counted, on_closed: Closed,
                 directory: Path | None = None) -> None:
        self.channels = tuple(channels)
        self.directory = directory
        self.image_shape = image_shape
        self.dtype = np.dtype(dtype)
        self.depth = max(2, QUEUE_BYTES // max(1, series_bytes))
        self._on_opened = on_opened
        self._on_taken = on_taken
        self._on_written = on_written
        self._on_closed = on_closed
        self._process = SeriesFileProcess(series_bytes)
        self._queue: queue.Queue[SeriesData | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._failure = ""  # an append failed: nothing more is written
        self._overflow = ""  # a series found the queue full: what is queued is still written
        self._closing = False

    @property
    def busy(self) -> bool:
        """A file is open, or opening, or closing."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def capturing(self) -> bool:
        return self.busy and not (self._closing or self._failure or self._overflow)

    @property
    def process_id(self) -> int | None:
        return self._process.pid

    def open(self, path: str, compression: str | None,
             params: Mapping[str, Sequence[str]], attrs: Mapping[str, str]) -> None:
        """Start capturing into ``path`` (created, or appended to); ValueError,
        PermissionError or FileNotFoundError at once for what the path tells,
        ``on_closed(reason)`` for what only opening the file tells (a compression
        :class:`~pvflow.storage.series_file.SeriesFile` does not know, a file of other
        channels)."""
        if self.busy and not self.capturing and self._thread is not None:
            self._thread.join(5)  # the last one is closing: it has nothing left to write
        if self.busy:
            raise RuntimeError("a file is still open")
        if not path:
            raise ValueError("no file path: write file:path first")
        self._check_place(Path(path))
        self._failure = self._overflow = ""
        self._closing = False
        self._queue = queue.Queue(self.depth)  # a close after a failure may have left a None
        request = (path, self.channels, self.image_shape, self.dtype, compression, params, attrs)
        self._thread = threading.Thread(target=self._run, args=(request, self._queue),
                                        daemon=True, name=f"pvflow-file-{Path(path).name}")
        self._thread.start()

    def _check_place(self, path: Path) -> None:
        if not path.is_absolute():
            raise ValueError(f"{path} is not an absolute path")
        if self.directory is not None and not path.resolve().is_relative_to(self.directory):
            raise PermissionError(f"{path} is not under {self.directory} "
                                  "(DISS_FILE_DIRECTORY), where this IOC writes files")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"no directory {path.parent} (on the IOC's host)")

    def submit(self, series: SeriesData) -> None:
        """Queue ``series`` if capturing (called in the order series are published)."""
        if not self.capturing:
            return
        try:
            self._queue.put_nowait(series)
        except queue.Full:
            self._overflow = (f"series {series.numid} not saved: the disk takes series slower "
                              f"than the detector makes them ({self.depth} series waited)")

    def close(self) -> None:
        """Stop capturing; the thread writes what is queued, then closes the file."""
        if not self.busy or self._closing:
            return
        self._closing = True
        try:
            self._queue.put_nowait(None)
        except queue.Full:
            pass  # the thread sees _closing once the queue is empty

    def stop(self, timeout: float) -> None:
        """The IOC stopping: close the file, then end the writer process."""
        self.close()
        if self._thread is not None:
            self._thread.join(timeout)
        self._process.stop(timeout)

    def _run(self, request: tuple, series_queue: queue.Queue[SeriesData | None]) -> None:
        path = request[0]
        try:
            self._process.open(*request)
        except OSError as exc:
            self._failure = f"cannot open {path!r}: {exc}"
            self._on_closed(self._failure)
            return
        self._on_opened()
        taken = written = 0
        try:
            while True:
                series = series_queue.get()
                if series is not None and not self._failure:
                    taken += 1
                    self._on_taken(taken)
                    written = self._append(path, series, written)
                stopping = self._closing or self._failure or self._overflow
                if (series is None or stopping) and series_queue.empty():
                    break
        finally:
            try:
                self._process.close()
            except OSError as exc:  # the series written are flushed already
                self._failure = self._failure or f"closing {path} failed: {exc}"
            self._on_closed(self._failure or self._overflow)

    def _append(self, path: str, series: SeriesData, written: int) -> int:
        try:
            self._process.append(series)
        except OSError as exc:
            self._failure = f"series {series.numid} not saved to {path}: {exc}"
            return written
        self._on_written(written + 1)
        return written + 1
