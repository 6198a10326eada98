"""Collecting one image series and checking it against the device configuration (no EPICS).

Diss is "very picky about how many ImageData events to expect": a series must bring exactly
``num_images`` images, each with every channel at the configured size. Anything else raises
:class:`SeriesError` with the numbers, which the controller turns into ERROR.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .events import DeviceConfig, ImageDataEvent, StartDataEvent


class SeriesError(ValueError):
    """A series broke the data-event contract (count, channel, shape, uuid)."""


@dataclass(slots=True)
class Series:
    """A complete series, as handed to data hooks: arrays of shape (num_images, width, height)."""

    numid: int
    uuid: str
    ssqcnt: int
    images: dict[str, np.ndarray]
    start_ts: np.ndarray
    durations: np.ndarray
    meta: dict[str, object] = field(default_factory=dict)


class SeriesCollector:
    """Fills per-channel (num_images, width, height) arrays from image events."""

    def __init__(self, config: DeviceConfig, start: StartDataEvent, ssqcnt: int) -> None:
        self.config = config
        self.uuid = start.uuid
        count = config.num_images
        width, height = config.image_size
        dtype = np.dtype(config.dtype)
        self.series = Series(
            numid=int(start.numid), uuid=start.uuid, ssqcnt=ssqcnt,
            images={c.label: np.empty((count, width, height), dtype) for c in config.channels},
            start_ts=np.zeros(count), durations=np.zeros(count), meta=dict(start.meta))
        # np.empty: finish() hands the arrays out only when every index was filled
        self._filled = np.zeros(count, dtype=bool)
        self.received = 0

    def add(self, event: ImageDataEvent) -> None:
        expected = self.config.num_images
        if event.series_uuid != self.uuid:
            raise SeriesError(f"image for series {event.series_uuid} during series {self.uuid}")
        if self.received >= expected:
            raise SeriesError(f"too many images: got image {self.received + 1} of a series of "
                              f"{expected}")
        if not 0 <= event.index < expected:
            raise SeriesError(f"image index {event.index} outside 0..{expected - 1}")
        if self._filled[event.index]:
            raise SeriesError(f"image index {event.index} delivered twice")
        unknown = sorted(set(event.images) - set(self.series.images))
        missing = sorted(set(self.series.images) - set(event.images))
        if unknown or missing:
            raise SeriesError(f"image {event.index}: unknown channels {unknown}, "
                              f"missing channels {missing}")
        shape = self.config.image_size
        for label, image in event.images.items():
            if tuple(np.shape(image)) != tuple(shape):
                raise SeriesError(f"image {event.index} channel {label}: shape "
                                  f"{tuple(np.shape(image))}, expected {tuple(shape)}")
            self._store(label, event.index, image)
        self.series.start_ts[event.index] = event.start_ts
        self.series.durations[event.index] = event.duration
        self._filled[event.index] = True
        self.received += 1

    def _store(self, label: str, index: int, image: np.ndarray) -> None:
        """A series of one image takes the emitted array itself (events are never changed
        once emitted); longer series, or another pixel type, are copied into place."""
        images = self.series.images
        if self.config.num_images == 1 and isinstance(image, np.ndarray) \
                and image.dtype == images[label].dtype and image.flags.c_contiguous:
            images[label] = image[np.newaxis]
        else:
            images[label][index] = image

    def finish(self) -> Series:
        expected = self.config.num_images
        if self.received != expected:
            raise SeriesError(f"too few images: series ended after {self.received} of "
                              f"{expected}")
        return self.series
