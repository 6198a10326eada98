"""The detector's ``file:`` PVs (a pvflow addition; Diss has none): every series published
while capturing is appended to an HDF5 file by the IOC itself (:mod:`.file_writer`).

================== ================ == ==============================================
``file:path``      CHAR[1024] (str) RW the file to write, on the IOC's host; refused while
                                       capturing
``file:compression`` STRING         RW ``none`` (default), ``lz4`` or ``bslz4``
``file:capture``   LONG             RW 1 opens the file (created, or appended to) and captures
                                       every series published from then on; 0 closes it
                                       once what is queued is written
``file:open``      LONG             R  1 while the file is open
``file:captured``  LONG             R  series taken for the file since capture began (as
                                       areaDetector's ``NumCaptured``); each is written
                                       unless the capture stops short, saying so
``file:written``   LONG             R  series appended to the file since it was opened
                                       (posted at most every 0.1 s, and as it closes)
``file:dtype``     STRING           R  pixel type of the images in the file (numpy's name)
``file:message``   CHAR[1024] (str) R  why the last capture did not start or stopped short
================== ================ == ==============================================

``captured`` returns to 0 as a capture begins; opening publishes ``written`` 0, an empty
``message``, then ``open`` 1. A capture that stops short publishes ``message`` (naming the
first series not saved); ``capture`` returns to 0 before ``open`` falls. A series is
counted in ``captured`` as the writer takes it, before it is written, so a step scan need
not wait for the disk; the client checks at the end that ``written`` caught up. The file
has the layout of :mod:`pvflow.storage.series_file`, the one ``pvflow save`` writes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from ...storage.series import SeriesData
from ...storage.series_file import COMPRESSIONS
from ..framework.records import (
    ERROR_TEXT_LENGTH,
    LoopThread,
    StatusRecords,
    check_record_name,
    publish,
)
from ..framework.structured_logging import log_event
from .events import DeviceConfig
from .file_writer import FileWriter
from .series import Series

log = logging.getLogger("pvflow.ioc.detector.file")
PATH_LENGTH = 1024
WRITTEN_PERIOD = 0.1  # seconds between posts of file:written while series are written
NO_COMPRESSION = "none"


class FileRecords:
    """The ``file:`` PVs of one detector, bound to its :class:`.FileWriter`.

    ``meta`` holds each channel's parameter records: the numeric ones go into the file with
    every series, as ``pvflow save`` stores them.
    """

    def __init__(self, prefix: str, config: DeviceConfig, loop_thread: LoopThread,
                 status: StatusRecords, meta: dict[str, dict[str, Any]],
                 directory: Path | None) -> None:
        from softioc import builder

        self.prefix = prefix
        self._written_count = 0
        self._written_posted = 0.0
        self.loop_thread = loop_thread
        self.status = status
        self.num_images = config.num_images
        self.params = {label: {key: record for key, record in records.items()
                               if isinstance(record.get(), (int, float))}
                       for label, records in meta.items()}
        dtype = np.dtype(config.dtype)
        series_bytes = config.pixels_per_series * dtype.itemsize * len(config.channels)
        self.writer = FileWriter([c.label for c in config.channels], config.image_size, dtype,
                                 series_bytes, self._opened, self._taken, self._written,
                                 self._closed, directory)
        name = self._name
        guard = status.guarded
        self.path = builder.longStringOut(name("path"), length=PATH_LENGTH, initial_value="",
                                          validate=guard(self._validate_path))
        self.compression = builder.stringOut(name("compression"), initial_value=NO_COMPRESSION,
                                             validate=guard(self._validate_compression))
        self.capture = builder.longOut(name("capture"), initial_value=0, always_update=True,
                                       validate=guard(self._validate_capture))
        self.open = builder.longIn(name("open"), initial_value=0, SCAN="Passive")
        self.captured = builder.longIn(name("captured"), initial_value=0, SCAN="Passive")
        self.written = builder.longIn(name("written"), initial_value=0, SCAN="Passive")
        self.dtype = builder.stringIn(name("dtype"), initial_value=dtype.name, SCAN="Passive")
        self.message = builder.longStringIn(name("message"), length=ERROR_TEXT_LENGTH,
                                            initial_value="", SCAN="Passive")

    def _name(self, suffix: str) -> str:
        return check_record_name(f"{self.prefix}file:{suffix}")

    # -- client writes ------------------------------------------------------------------------

    def _validate_path(self, record: Any, value: str) -> bool:
        if self.writer.capturing:
            self.status.refuse(record.name, value, "capturing: write file:capture 0 first")
            return False
        return True

    def _validate_compression(self, record: Any, value: str) -> bool:
        if value not in (NO_COMPRESSION, *COMPRESSIONS):
            self.status.refuse(record.name, value,
                               f"use {', '.join((NO_COMPRESSION, *COMPRESSIONS))}")
            return False
        return self._validate_path(record, value)

    def _validate_capture(self, record: Any, value: int) -> bool:
        if self.loop_thread.is_current():
            return True
        if value > 0 and self.writer.capturing:
            self.status.refuse(record.name, value, "already capturing")
            return False
        self.loop_thread.call(self._open if value > 0 else self.writer.close)
        return True

    # -- the loop thread ----------------------------------------------------------------------

    def _open(self) -> None:
        if self.writer.capturing:
            return  # a second write of 1 that came before the first was served
        path = str(self.path.get())
        compression = str(self.compression.get())
        try:
            self.writer.open(path, None if compression == NO_COMPRESSION else compression,
                             {label: tuple(records) for label, records in self.params.items()},
                             {"detector_prefix": self.prefix})
        except Exception as exc:  # noqa: BLE001 - a client's request: refused with the reason
            self._refused(f"cannot open {path!r}: {type(exc).__name__}: {exc}")
            return
        publish(self.captured, 0)  # before any series is taken
        log_event(log, logging.INFO, "Capture requested", path=path, compression=compression)

    def _refused(self, reason: str) -> None:
        self.status.refuse(self.capture.name, 1, reason)
        publish(self.message, reason[: ERROR_TEXT_LENGTH - 1])
        self.capture.set(0)

    def submit(self, series: Series) -> None:
        """Data hook: hand the published series to the writer (when capturing)."""
        if not self.writer.capturing:
            return
        count = self.num_images
        params = {label: {key: record.get() for key, record in records.items()}
                  for label, records in self.params.items()}
        self.writer.submit(SeriesData(series.numid, series.uuid, series.images,
                                      series.start_ts[:count], series.durations[:count],
                                      params))

    # -- the writer's thread, which waits for series most of the time: a post blocks the
    # posting thread ~0.5 ms, which the loop thread cannot spare, and a step-scan point waits
    # for `captured` (no hop through the loop). Only this thread posts these while open.

    def _opened(self) -> None:
        log_event(log, logging.INFO, "Capturing", writer_pid=self.writer.process_id)
        self._written_count, self._written_posted = 0, time.monotonic()
        publish(self.written, 0)
        publish(self.message, "")
        publish(self.open, 1)

    def _taken(self, count: int) -> None:
        publish(self.captured, count)

    def _written(self, count: int) -> None:
        # at most every WRITTEN_PERIOD (nobody waits on it while the file is open); the last
        # count is posted as the file closes, before `open` falls
        self._written_count = count
        now = time.monotonic()
        if now - self._written_posted >= WRITTEN_PERIOD:
            self._written_posted = now
            publish(self.written, count)

    def _closed(self, reason: str) -> None:
        self.loop_thread.call(self._publish_closed, reason)

    def _publish_closed(self, reason: str) -> None:
        if not self.open.get():  # it never opened: the request is refused
            self._refused(reason)
            return
        publish(self.written, self._written_count)
        if reason:
            log_event(log, logging.ERROR, "Capture stopped short", reason=reason)
            self.status.show_error(f"{self.prefix}file: {reason}")
        else:
            log_event(log, logging.INFO, "Capture closed")
        publish(self.message, reason[: ERROR_TEXT_LENGTH - 1])
        if self.capture.get():
            self.capture.set(0)
        publish(self.open, 0)

    def close(self, timeout: float = 30.0) -> None:
        """The IOC stopping: write what is queued, close the file, end the writer process."""
        self.writer.stop(timeout)
