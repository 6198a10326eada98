"""The detector's EPICS records, Diss-compatible (application layer, over pythonSoftIOC).

Under ``{P}`` = ``DISS_EPICS_PREFIX`` (CA types as a CA client sees them):

================= ====================== == ==============================================
``state``         STRING                 R  INIT WARMUP READY ACQUIRE PROCESS CANCEL ERROR FAIL
``acquire``       LONG                   RW write 1 in READY to acquire; 1 while acquiring,
                                            0 in READY and ERROR; refused (with a message)
                                            elsewhere
``duration``      DOUBLE (1.0)           RW seconds per image, read when an acquisition starts
``cancel``        LONG                   RW write > 0 to cancel the running acquisition
``clear``         LONG                   RW write 0 or 1 in ERROR to acknowledge the errors
``error``         STRING                 R  first pending error (40 characters at most)
``error_text``    CHAR[1024] (string)    R  the same, whole (pvflow addition)
``channels``      CHAR[] (string)        R  channel labels, ``:``-separated (pvflow addition)
``ssqcnt``        LONG (-1)              R  series counter 0..15, wrapping
``uuid``          STRING                 R  uuid of the last series
``numid``         LONG (-1)              R  numeric id of the last series, from the device
``start_ts``      DOUBLE[n_img*n_ch]     R  start time of each image (first n_img elements)
``acq_td``        DOUBLE[n_img*n_ch]     R  real exposure of each image (first n_img elements)
``{ch}:image``    pixel type[n*W*H]      R  the series, shape (n_img, W, H) flattened in C order
``{ch}:asize0..2`` LONG                  R  n_img, W, H
``{ch}:{meta}``   DOUBLE / LONG / STRING RW channel parameter, passed to the backend
``file:...``                                the IOC's own HDF5 writer (:mod:`.file_records`)
================= ====================== == ==============================================

The image type follows the device's pixel type (Diss always used DOUBLE; the ``sim`` backend
does too by default). A CA client sees unsigned 16-bit images as LONG (CA has no unsigned
short); PVA clients see ``ushort[]``.

Every series is published in one go, in this order: images, ``start_ts``, ``acq_td``,
``uuid``, ``numid``, ``ssqcnt``, then ``acquire`` returns to 0 with READY. A client that sees
``numid`` change (or ``acquire`` fall) can read the images of that series.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..framework.records import LoopThread, StatusRecords, check_record_name, publish
from ..framework.structured_logging import log_event
from .controller import DetectorController, DetectorState
from .events import DeviceConfig, MetaValue
from .file_records import FileRecords
from .series import Series

log = logging.getLogger("pvflow.ioc.detector.records")

NO_UUID = "00000000-0000-0000-0000-000000000000"


def image_array_bytes(config: DeviceConfig) -> int:
    """Bytes of one ``{ch}:image`` array as CA sends it (8 bytes per pixel at most)."""
    ca_item_size = 8 if np.dtype(config.dtype).itemsize > 4 else 4
    if np.dtype(config.dtype).itemsize == 1:
        ca_item_size = 1
    return config.pixels_per_series * ca_item_size


class DetectorRecords:
    """Builds the records for ``config`` and binds them to ``controller``."""

    def __init__(self, prefix: str, controller: DetectorController, config: DeviceConfig,
                 loop_thread: LoopThread, file_directory: Path | None = None) -> None:
        from softioc import builder

        self.prefix = prefix
        self.controller = controller
        self.config = config
        self.loop_thread = loop_thread
        name = self._name
        self.status = StatusRecords(prefix, controller.machine, loop_thread,
                                    on_clear=controller.clear, logger=log)
        guard = self.status.guarded
        self.acquire = builder.longOut(name("acquire"), initial_value=0, always_update=True,
                                       validate=guard(self._validate_acquire))
        self.duration = builder.aOut(name("duration"), initial_value=1.0, PREC=3, EGU="s",
                                     always_update=True, validate=guard(self._validate_duration))
        self.cancel = builder.longOut(name("cancel"), initial_value=0, always_update=True,
                                      validate=guard(self._validate_cancel))
        self.ssqcnt = builder.longIn(name("ssqcnt"), initial_value=-1, SCAN="Passive")
        self.uuid = builder.stringIn(name("uuid"), initial_value=NO_UUID, SCAN="Passive")
        self.numid = builder.longIn(name("numid"), initial_value=-1, SCAN="Passive")
        timing_length = config.num_images * len(config.channels)
        self.start_ts = builder.WaveformIn(name("start_ts"), length=timing_length,
                                           datatype=np.float64, SCAN="Passive")
        self.acq_td = builder.WaveformIn(name("acq_td"), length=timing_length,
                                         datatype=np.float64, SCAN="Passive")
        labels = ":".join(c.label for c in config.channels)
        self.channels = builder.longStringIn(name("channels"), length=len(labels) + 1,
                                             initial_value=labels, SCAN="Passive")
        self.images: dict[str, Any] = {}
        self.sizes: dict[str, list[Any]] = {}
        self.meta: dict[str, dict[str, Any]] = {}
        width, height = config.image_size
        for channel in config.channels:
            label = channel.label
            self.images[label] = builder.WaveformIn(
                name(f"{label}:image"), length=config.pixels_per_series,
                datatype=np.dtype(config.dtype), SCAN="Passive")
            self.sizes[label] = [
                builder.longIn(name(f"{label}:asize{axis}"), initial_value=size, SCAN="Passive")
                for axis, size in enumerate((config.num_images, width, height))]
            self.meta[label] = {key: self._meta_record(label, key, value)
                                for key, value in channel.meta.items()}
        self.file = FileRecords(prefix, config, loop_thread, self.status, self.meta,
                                file_directory)
        controller.machine.observe(self._state_changed)
        controller.add_data_hook(self.publish_series)
        controller.add_data_hook(self.file.submit)  # after the records: the order clients see
        controller.add_channel_meta_hook(self._channel_meta)

    def _name(self, suffix: str) -> str:
        return check_record_name(self.prefix + suffix)

    def _meta_record(self, channel: str, key: str, value: MetaValue) -> Any:
        from softioc import builder

        name = self._name(f"{channel}:{key}")

        @self.status.guarded
        def validate(record: Any, new: Any) -> bool:
            return self._validate_meta(record, channel, key, new)

        if isinstance(value, bool) or isinstance(value, int):
            return builder.longOut(name, initial_value=int(value), always_update=True,
                                   validate=validate)
        if isinstance(value, float):
            return builder.aOut(name, initial_value=value, PREC=4, always_update=True,
                                validate=validate)
        return builder.stringOut(name, initial_value=str(value), always_update=True,
                                 validate=validate)

    # -- client writes (validate runs in the server's thread; decisions are taken here) --------

    def _validate_acquire(self, record: Any, value: int) -> bool:
        if self.loop_thread.is_current():
            return True
        if value <= 0:
            if self.controller.state is DetectorState.READY:
                return True
            self.status.refuse(record.name, value, "use cancel to stop an acquisition")
            return False
        reason = self.controller.reserve_acquire()
        if reason is not None:
            self.status.refuse(record.name, value, reason)
            return False
        duration = float(self.duration.get())
        self.loop_thread.call(self.controller.start_acquire, duration)
        return True

    def _validate_duration(self, record: Any, value: float) -> bool:
        if self.loop_thread.is_current():
            return True
        if not math.isfinite(value) or value < 0:
            self.status.refuse(record.name, value, "a duration must be a finite number >= 0")
            return False
        return True

    def _validate_cancel(self, record: Any, value: int) -> bool:
        if self.loop_thread.is_current():
            return True
        if value > 0:
            self.loop_thread.call(self._cancel_requested)
        return True

    def _cancel_requested(self) -> None:
        self.controller.cancel()
        if self.controller.state is DetectorState.READY:
            self.cancel.set(0)

    def _validate_meta(self, record: Any, channel: str, key: str, value: Any) -> bool:
        if self.loop_thread.is_current():
            return True
        if self.controller.state is DetectorState.FAIL:
            self.status.refuse(record.name, value, "the IOC is in FAIL")
            return False
        if isinstance(value, float) and not math.isfinite(value):
            self.status.refuse(record.name, value, "not a finite number")
            return False
        log_event(log, logging.INFO, "Channel parameter", pv=record.name, value=value)
        self.loop_thread.call(functools.partial(self.controller.set_channel_meta, channel,
                                                **{key: value}))
        return True

    # -- controller -> records (loop thread) ---------------------------------------------------

    def started(self) -> None:
        """Publish the current state once the records are served."""
        self._state_changed(self.controller.state, self.controller.state)

    def _state_changed(self, old: DetectorState, new: DetectorState) -> None:
        # After the state records (observed first): a Diss client takes the fall of acquire
        # as the end of a series and expects READY, and cancel back to 0, when it sees it.
        if new is DetectorState.ACQUIRE:
            self.acquire.set(1)
        elif new is DetectorState.READY:
            if self.cancel.get():  # a put to an output record costs ~0.3 ms: only when due
                self.cancel.set(0)
            self.acquire.set(0)
        elif new in (DetectorState.ERROR, DetectorState.FAIL):
            self.acquire.set(0)  # no acquisition runs there; a series in flight is void

    def _channel_meta(self, channel: str, meta: Mapping[str, MetaValue]) -> None:
        records = self.meta.get(channel, {})
        for key, value in meta.items():
            record = records.get(key)
            if record is not None and record.get() != value:
                record.set(value)

    def publish_series(self, series: Series) -> None:
        """Put a complete series into the records (PROCESS)."""
        count = self.config.num_images
        for label, images in series.images.items():
            publish(self.images[label], images.reshape(-1))
        publish(self.start_ts, series.start_ts[:count])
        publish(self.acq_td, series.durations[:count])
        publish(self.uuid, series.uuid)
        publish(self.numid, series.numid)
        publish(self.ssqcnt, series.ssqcnt)
        log_event(log, logging.DEBUG, "Published series", numid=series.numid,
                  ssqcnt=series.ssqcnt)
