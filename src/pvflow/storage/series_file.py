"""Image series appended to an HDF5 file (h5py), readable at every moment, also after a kill.

Layout (every dataset has one row per image, in arrival order)::

    /images/{channel}        (n, width, height)  pixel type; chunks of whole rows of one
                                                 image, 256 KiB at most
    /numid                   (n,) int64          the device's series id of each image
    /uuid                    (n,) string         the series uuid
    /index                   (n,) int32          the image's index within its series
    /start_ts                (n,) float64        start time of each image (POSIX seconds)
    /exposure                (n,) float64        real exposure of each image (acq_td)
    /params/{channel}/{name} (n,)                channel parameter in effect for the series
    attrs: complete_images   rows that belong to complete series (the rest, after a kill)

Chunks are small because each is one ``pwrite``: the kernel copies a 2 MB write in one go
(allocating large pages for it, compacting memory when it must), and a kernel that does not
preempt (``PREEMPT_NONE``) then holds that CPU for up to tens of milliseconds, long enough
to keep a detector IOC's server thread waiting on the same machine past the next series.
Writes of 256 KiB stay under a millisecond.

Each series is written whole and then flushed, so a writer killed at any moment leaves a
file in which ``complete_images`` rows are whole series. A write the disk refuses midway
(:class:`WriteRefusedError`) leaves the file on disk as that flush left it, but HDF5 has by
then counted space the disk never took: closing as usual would record it, and HDF5 would
call the file truncated and open none of it. :meth:`SeriesFile.close` then closes without
touching the disk. Compression (``lz4``, ``bslz4``)
goes through hdf5plugin's filters: any HDF5 reader with the plugin decodes it.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .series import SeriesData, SeriesError

COMPRESSIONS = ("lz4", "bslz4")
# free space kept beyond twice a series: HDF5's own metadata and closing the file
SPACE_MARGIN = 16 * 1024 * 1024
FORMAT = "pvflow-series-1"
CHUNK_BYTES = 256 * 1024  # see above: the longest single write the kernel makes
ROW_DATASETS = {"numid": np.int64, "index": np.int32, "start_ts": np.float64,
                "exposure": np.float64}


class DiskFullError(OSError):
    """Not enough free space for the next series; nothing of it was written, the file
    closes cleanly."""


class WriteRefusedError(OSError):
    """The disk refused a write midway through a series (it filled up under another
    writer, a quota, a file size limit, an I/O error): the file keeps the series before it."""


def _filter(compression: str | None) -> dict[str, Any]:
    if compression is None:
        return {}
    import hdf5plugin

    if compression == "lz4":
        return dict(hdf5plugin.LZ4())
    if compression == "bslz4":
        return dict(hdf5plugin.Bitshuffle(cname="lz4"))
    raise ValueError(f"unknown compression {compression!r}: use one of {', '.join(COMPRESSIONS)}")


class SeriesFile:
    """Opens (creating or appending to) ``path`` for series of ``channels`` images.

    Appending to an existing file needs the same channels, image shape and pixel type; a
    mismatch is a :class:`.SeriesError` naming it, and the file is left untouched.
    """

    def __init__(self, path: str | Path, channels: Sequence[str], image_shape: tuple[int, int],
                 dtype: np.dtype | str, *, compression: str | None = None,
                 attrs: Mapping[str, Any] | None = None,
                 params: Mapping[str, Sequence[str]] | None = None) -> None:
        import h5py

        self.path = Path(path)
        self.channels = tuple(channels)
        self.image_shape = tuple(image_shape)
        self.dtype = np.dtype(dtype)
        self.params = {c: tuple(names) for c, names in (params or {}).items()}
        filters = _filter(compression)
        # locking=False: readers (Tiled, a viewer) may open the file while we append
        self.file = h5py.File(self.path, "a", locking=False)
        self._raw = False
        self._refused = False  # a write failed midway: close without writing (see above)
        self._last_start: int | None = None  # first row of the series appended last
        try:
            if "images" in self.file:
                self._check_existing()
            else:
                self._create(filters, attrs or {})
        except BaseException:
            self.file.close()
            raise
        # handles looked up once: a lookup by name costs as much as writing a row
        self._images = {c: self.file[f"images/{c}"] for c in self.channels}
        self._rows = {name: self.file[name] for name in ("uuid", *ROW_DATASETS)}
        self._params = {(c, n): self.file[f"params/{c}/{n}"] for c, names in self.params.items()
                        for n in names}
        first = self._images[self.channels[0]]
        self._raw = first.compression is None and not first._filters
        self.chunk_shape: tuple[int, int, int] = first.chunks
        # whole images cut into whole chunks of rows: written from the array's buffer
        self._raw = self._raw and self.image_shape[0] % self.chunk_shape[1] == 0 and \
            self.chunk_shape[2] == self.image_shape[1]
        # written in place each series: setting it through ``attrs`` recreates it (~0.1 ms)
        self._complete = self.file.attrs.get_id("complete_images")
        self.images = int(self.file.attrs["complete_images"])
        self.series = len(np.unique(self.file["numid"][: self.images])) if self.images else 0

    def _create(self, filters: dict[str, Any], attrs: Mapping[str, Any]) -> None:
        import h5py

        f = self.file
        f.attrs["format"] = FORMAT
        f.attrs["complete_images"] = 0
        for key, value in attrs.items():
            f.attrs[key] = value
        width, height = self.image_shape
        rows = chunk_rows(self.image_shape, self.dtype)
        for channel in self.channels:
            f.create_dataset(f"images/{channel}", shape=(0, width, height),
                             maxshape=(None, width, height), chunks=(1, rows, height),
                             dtype=self.dtype, **filters)
        for name, dtype in ROW_DATASETS.items():
            f.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(4096,), dtype=dtype)
        f.create_dataset("uuid", shape=(0,), maxshape=(None,), chunks=(4096,),
                         dtype=h5py.string_dtype())
        for channel, names in self.params.items():
            for name in names:
                f.create_dataset(f"params/{channel}/{name}", shape=(0,), maxshape=(None,),
                                 chunks=(4096,), dtype=np.float64)
        f.flush()

    def _check_existing(self) -> None:
        f = self.file
        have = tuple(sorted(f["images"]))
        if have != tuple(sorted(self.channels)):
            raise SeriesError(f"{self.path} holds channels {', '.join(have)}, not "
                              f"{', '.join(self.channels)}: save to another file")
        for channel in self.channels:
            dataset = f[f"images/{channel}"]
            if dataset.shape[1:] != self.image_shape or dataset.dtype != self.dtype:
                raise SeriesError(f"{self.path}: images/{channel} holds {dataset.dtype} images "
                                  f"of {dataset.shape[1:]}, not {self.dtype} of "
                                  f"{self.image_shape}")
        self._truncate()  # drop what a killed writer left half-written

    def append(self, series: SeriesData) -> None:
        """Write one whole series and flush; :class:`.SeriesError` if it does not fit, and
        :class:`OSError` when the disk refuses it (h5py says so with either exception).

        After an OSError the file on disk is as the last flush left it: whole. Closing it
        then would record space the disk refused, so a program that can should exit without
        closing (``pvflow save`` does)."""
        self._check_space(series)
        try:
            self._append(series)
        except SeriesError:
            raise
        except (OSError, RuntimeError) as exc:
            self._refused = True
            raise WriteRefusedError(getattr(exc, "errno", None) or errno.EIO,
                                    f"writing series {series.numid} failed: "
                                    f"{_reason(exc)}") from exc

    def _check_space(self, series: SeriesData) -> None:
        """Stop before a series the disk cannot hold: a write refused halfway can leave
        HDF5's record of the file's end ahead of what reached the disk."""
        need = 2 * sum(images.nbytes for images in series.images.values()) + SPACE_MARGIN
        free = shutil.disk_usage(self.path.resolve().parent).free
        if free < need:
            raise DiskFullError(errno.ENOSPC, f"disk full: {free / 1e6:.1f} MB free, series "
                                f"{series.numid} needs {need / 1e6:.1f} MB with the margin",
                                str(self.path))

    def _append(self, series: SeriesData) -> None:
        n = series.num_images
        start, stop = self.images, self.images + n
        f = self.file
        for channel in self.channels:
            images = series.images[channel]
            if images.shape != (n, *self.image_shape):
                raise SeriesError(f"series {series.numid}: {channel} images of shape "
                                  f"{images.shape}, not {(n, *self.image_shape)}")
            dataset = self._images[channel]
            dataset.resize(stop, axis=0)
            images = self._cast(series, channel, images)
            if self._raw:  # chunks of rows, stored as is: skip the selection machinery
                self._write_chunks(dataset, start, np.ascontiguousarray(images))
            else:
                dataset[start:stop] = images
        rows = {"uuid": np.array([series.uuid] * n, dtype=object),
                "numid": np.full(n, series.numid), "index": np.arange(n),
                "start_ts": series.start_ts, "exposure": series.exposures}
        for name, values in rows.items():
            _append_rows(self._rows[name], start, values)
        for (channel, name), dataset in self._params.items():
            _append_rows(dataset, start, np.full(n, series.params.get(channel, {}).get(
                name, np.nan)))
        self._set_complete(stop)
        f.flush()
        self._last_start = start
        self.images = stop
        self.series += 1

    def retract_last(self) -> None:
        """Take back the series appended last (found unreliable after it was written): the
        file then ends, whole, with the series before it."""
        if self._last_start is None:
            raise ValueError(f"{self.path}: no series appended by this writer to take back")
        self._set_complete(self._last_start)
        self._truncate()
        self.file.flush()
        self.images, self._last_start = self._last_start, None
        self.series -= 1

    def _write_chunks(self, dataset: Any, start: int, images: np.ndarray) -> None:
        rows = self.chunk_shape[1]
        for index, image in enumerate(images, start):
            for first in range(0, image.shape[0], rows):
                # a block of whole rows is contiguous: its buffer, no copy
                dataset.id.write_direct_chunk((index, first, 0), image[first:first + rows])

    def _set_complete(self, images: int) -> None:
        self._complete.write(np.array(images, dtype=self._complete.dtype))

    def _cast(self, series: SeriesData, channel: str, images: np.ndarray) -> np.ndarray:
        """Images as the file's pixel type (``--dtype``, or a wider type than the IOC's): a
        cast must be exact."""
        if images.dtype == self.dtype:
            return images
        if self.dtype.kind in "iu":
            info = np.iinfo(self.dtype)
            low, high = images.min(), images.max()
            if low < info.min or high > info.max:
                raise SeriesError(f"series {series.numid}: {channel} pixels {low}..{high} do "
                                  f"not fit {self.dtype}")
        return images.astype(self.dtype)

    def _truncate(self) -> None:
        """Every dataset as long as the complete series (an append interrupted by Ctrl-C, or
        a killed writer, may have grown some)."""
        f = self.file
        complete = int(f.attrs["complete_images"])
        for name in ("uuid", *ROW_DATASETS, *(f"images/{c}" for c in self.channels),
                     *(f"params/{c}/{n}" for c, names in self.params.items() for n in names)):
            if name in f:
                f[name].resize(complete, axis=0)

    def close(self) -> None:
        if not self.file.id.valid:
            return
        if self._refused:
            self._detach()
        try:
            self._truncate()
            self.file.close()
        except (OSError, RuntimeError):
            if not self._refused:
                raise
            # what failed went to memory; the file on disk is as the last flush left it

    def _detach(self) -> None:
        """Point HDF5's descriptor of the file at an anonymous file in memory: what closing
        writes goes there, and the file on disk stays whole."""
        scratch = os.memfd_create("pvflow-detached-series-file", os.MFD_CLOEXEC)
        try:
            os.dup2(scratch, self.file.id.get_vfd_handle())
        finally:
            os.close(scratch)

    def __enter__(self) -> SeriesFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def chunk_rows(image_shape: tuple[int, int], dtype: np.dtype) -> int:
    """Rows of an image per chunk: the most that divide the image evenly and stay within
    :data:`CHUNK_BYTES` (one row at least)."""
    width, height = image_shape
    row_bytes = max(1, height * np.dtype(dtype).itemsize)
    most = max(1, CHUNK_BYTES // row_bytes)
    return max(rows for rows in range(1, min(width, most) + 1) if width % rows == 0)


def _append_rows(dataset: Any, start: int, values: np.ndarray) -> None:
    """Grow a 1-d dataset (numbers, or strings as objects) by ``values`` at ``start`` through
    h5py's low-level calls: its ``resize`` and ``__setitem__`` cost ~0.12 ms per dataset, more
    than the write."""
    from h5py import h5s

    values = np.ascontiguousarray(values, dtype=dataset.dtype)
    dataset.id.set_extent((start + len(values),))
    space = dataset.id.get_space()
    space.select_hyperslab((start,), (len(values),))
    dataset.id.write(h5s.create_simple((len(values),)), space, values)


def _reason(exc: BaseException) -> str:
    """One line: HDF5's messages span several and repeat the errno's text among details."""
    code = getattr(exc, "errno", None)
    return os.strerror(code) if code else str(exc).splitlines()[0]


def read_complete(path: str | Path) -> dict[str, np.ndarray]:
    """The complete rows of a series file as arrays (images under ``images/{channel}``)."""
    import h5py
    import hdf5plugin  # noqa: F401 - registers the lz4 and bitshuffle filters

    with h5py.File(path, "r", locking=False) as f:
        complete = int(f.attrs["complete_images"])
        result = {f"images/{c}": f[f"images/{c}"][:complete] for c in f["images"]}
        for name in ("uuid", *ROW_DATASETS):
            result[name] = f[name][:complete]
        return result
