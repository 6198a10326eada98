"""One complete image series as read from a detector IOC, and the errors of the data path.

A series is what one ``acquire`` produced: ``num_images`` images per channel, their start
times and real exposures, the device's series id (``numid``) and uuid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


def first_int(value: Any) -> int:
    """A record's value as an int: a scalar comes as a number or as a one-element array,
    depending on the protocol and the request."""
    return int(np.asarray(value).reshape(-1)[0])


class SeriesError(RuntimeError):
    """The data path cannot vouch for the images: a series is missing, partial or late."""


class IncompleteSeriesError(SeriesError):
    """A series lacks the update of some PV (``numid``: the series id, when it came).

    This condemns the series before it too. For arrays and strings an IOC's database keeps
    at most one pending update per subscription, and its CA and pvAccess servers (rsrv,
    qsrv) read the value only when they take the update: an update dropped because the
    previous one was still waiting means that previous one went out with the newer value,
    under its own older timestamp.
    """

    def __init__(self, message: str, numid: int | None = None) -> None:
        super().__init__(message)
        self.numid = numid


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
