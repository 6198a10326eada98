"""One complete image series as read from a detector IOC, and the errors of the data path.

A series is what one ``acquire`` produced: ``num_images`` images per channel, their start
times and real exposures, the device's series id (``numid``) and uuid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class SeriesError(RuntimeError):
    """The data path cannot vouch for the images: a series is missing, partial or late."""


@dataclass(frozen=True, slots=True)
class SeriesData:
    """Images per channel, each of shape ``(num_images, width, height)``."""

    numid: int
    uuid: str
    images: dict[str, np.ndarray]
    start_ts: np.ndarray
    exposures: np.ndarray
    params: dict[str, dict[str, float | int | str]] = field(default_factory=dict)

    @property
    def num_images(self) -> int:
        return len(self.start_ts)
