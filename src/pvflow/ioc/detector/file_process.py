"""A :class:`~pvflow.storage.series_file.SeriesFile` in a process of its own, fed over a
socket pair by the IOC's file writer.

Why a process: h5py holds the GIL through every write, about 1 ms for a 2 MB series, and
the IOC's loop thread (the device, the state machine, the records) waits that long each time.
Measured on a fly scan of 5 ms exposures, the IOC writing in a thread took 1.16-1.22x the
time of not saving at all; with a write that released the GIL, 0.99x. A series goes over
in shared memory (one copy, ~0.1 ms for 2 MB; sent through the socket itself it cost more
than the thread did), the socket carries only the request and the reply.

The process ends when its socket closes (the IOC stopping, or killed): it closes its file
first, so the file always ends with whole series.
"""

from __future__ import annotations

import mmap
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ...storage.series import SeriesData


class FileProcessError(OSError):
    """The writer process refused a request (its reason), or is gone."""


class SeriesFileProcess:
    """The IOC's side: open, append and close forwarded to the process (started at the
    first open, kept for the next files), a series of at most ``series_bytes`` at a time.
    Calls are synchronous; use from one thread."""

    def __init__(self, series_bytes: int) -> None:
        self.series_bytes = series_bytes
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._memory: mmap.mmap | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def open(self, path: str, channels: Sequence[str], image_shape: tuple[int, int],
             dtype: np.dtype, compression: str | None,
             params: Mapping[str, Sequence[str]], attrs: Mapping[str, str]) -> None:
        self._start()
        self._call(("open", path, tuple(channels), tuple(image_shape), np.dtype(dtype).str,
                    compression, {c: tuple(n) for c, n in params.items()}, dict(attrs)))

    def append(self, series: SeriesData) -> None:
        assert self._memory is not None, "open() first"
        channels = sorted(series.images)
        offset = 0
        for channel in channels:
            image = series.images[channel]
            view = np.frombuffer(self._memory, image.dtype, image.size, offset)
            np.copyto(view.reshape(image.shape), image)
            offset += image.nbytes
        self._call(("append", series.numid, series.uuid, series.start_ts, series.exposures,
                    series.params, channels))

    def close(self) -> None:
        self._call(("close",))

    def stop(self, timeout: float = 30.0) -> None:
        """End the process: it closes an open file first."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            try:
                self._process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
            self._process = None
        if self._memory is not None:
            self._memory.close()
            self._memory = None

    def _start(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self.stop()
        ours, theirs = socket.socketpair()
        memory = os.memfd_create("pvflow-series", os.MFD_CLOEXEC)
        try:
            os.ftruncate(memory, self.series_bytes)
            self._memory = mmap.mmap(memory, self.series_bytes)
            with theirs:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "pvflow.ioc.detector.file_process",
                     str(theirs.fileno()), str(memory), str(self.series_bytes)],
                    pass_fds=[theirs.fileno(), memory], stdin=subprocess.DEVNULL)
        finally:
            os.close(memory)
        self._conn = Connection(ours.detach())

    def _call(self, request: tuple[Any, ...]) -> None:
        if self._conn is None:
            raise FileProcessError("the file writer process is not running")
        try:
            self._conn.send(request)
            reply = self._conn.recv()
        except (OSError, EOFError) as exc:
            code = None if self._process is None else self._process.poll()
            raise FileProcessError(f"the file writer process is gone (exit code {code}): "
                                   f"{exc}") from exc
        if reply is not None:
            raise FileProcessError(reply)


def _serve(conn: Connection, memory: mmap.mmap) -> None:
    from ...storage.series_file import SeriesFile, WriteRefusedError

    file: SeriesFile | None = None
    try:
        while True:
            try:
                request = conn.recv()
            except EOFError:
                return
            op, *args = request
            try:
                if op == "open":
                    path, channels, shape, dtype, compression, params, attrs = args
                    file = SeriesFile(path, channels, shape, dtype, compression=compression,
                                      params=params, attrs=attrs)
                elif op == "append":
                    assert file is not None, "append before open"
                    numid, uuid, start_ts, exposures, params, channels = args
                    images = _images(memory, file, channels, len(start_ts))
                    file.append(SeriesData(numid, uuid, images, start_ts, exposures, params))
                elif op == "close" and file is not None:
                    file, closing = None, file
                    closing.close()
            except WriteRefusedError as exc:
                conn.send(f"{type(exc).__name__}: {exc}")
                # The file on disk holds the series before, whole. Closing it must not write
                # (SeriesFile makes sure), and if even that failed HDF5 would still hold it,
                # ready to write into whatever file takes its descriptor next: the next file
                # gets a new process.
                assert file is not None
                file.close()
                os._exit(1)
            except Exception as exc:  # noqa: BLE001 - the IOC reports it, naming the series
                conn.send(f"{type(exc).__name__}: {exc}")
            else:
                conn.send(None)
    finally:
        if file is not None:
            file.close()


def _images(memory: mmap.mmap, file: Any, channels: Sequence[str],
            count: int) -> dict[str, np.ndarray]:
    """The series' images, as the IOC laid them out in the shared memory (no copy)."""
    shape = (count, *file.image_shape)
    size = int(np.prod(shape))
    return {channel: np.frombuffer(memory, file.dtype, size, index * size * file.dtype.itemsize)
            .reshape(shape) for index, channel in enumerate(channels)}


def main(argv: Sequence[str] | None = None) -> int:
    # Ctrl-C at a terminal reaches the whole process group: the IOC decides when we stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(10)
    socket_fd, memory_fd, size = (int(arg) for arg in (argv or sys.argv[1:]))
    with Connection(socket_fd) as conn, mmap.mmap(memory_fd, size) as memory:
        _serve(conn, memory)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
