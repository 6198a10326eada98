"""What a busy-record fly scan yields to bluesky: data keys and event pages (pure, no I/O).

Shared by the ophyd (v1) and the ophyd-async flyers, so both describe and page their arrays
exactly alike. The controller fills one array per measured quantity plus one array of trigger
times; row ``i`` of every array belongs to trigger ``i``, whose wall-clock time is ``time[i]``.
That time goes into the page's ``timestamps``: the RunEngine overwrites a page's ``time`` with
the moment of collection, so ``timestamps`` is the only place the real acquisition time can
live (see bluesky's ``_collect_event_pages``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..reading import Reading

DEFAULT_PAGE_SIZE = 1000


@dataclass(frozen=True)
class FlyArrays:
    """The waveform PVs of a fly scan: ``fields`` maps a field name to its PV; ``time_field``
    names the field holding the trigger times (POSIX seconds)."""

    fields: Mapping[str, str]
    time_field: str

    def __post_init__(self) -> None:
        if self.time_field not in self.fields:
            raise ValueError(f"time_field {self.time_field!r} is not one of the fields "
                             f"{sorted(self.fields)}")

    def key(self, flyer_name: str, field: str) -> str:
        """The data key of ``field``: ``<flyer>_<field>``, as ophyd names its signals."""
        return f"{flyer_name}_{field}"

    @property
    def pvs(self) -> list[str]:
        return list(self.fields.values())


def data_key(pv: str, reading: Reading) -> dict[str, Any]:
    """An event-model DataKey for one row of the waveform ``pv`` (a scalar per trigger).

    ``reading`` is a CTRL reading of the waveform: its array gives the element type, its
    metadata the units, precision and limits.
    """
    values = np.asarray(reading.value)
    if values.dtype.kind not in "iuf":
        raise ValueError(f"{pv}: a fly-scan array must be numeric, its elements are "
                         f"{values.dtype}")
    key: dict[str, Any] = {
        "source": f"PV:{pv}",
        "dtype": "number" if values.dtype.kind == "f" else "integer",
        "shape": [],
        "dtype_numpy": values.dtype.newbyteorder("<").str,
        "units": reading.units,
        "precision": reading.precision,
    }
    limits = {name: {"low": pair[0], "high": pair[1]} for name, pair in (
        ("display", reading.display_limits), ("control", reading.control_limits),
        ("alarm", reading.alarm_limits), ("warning", reading.warning_limits))
        if pair is not None}
    if limits:
        key["limits"] = limits
    return key


def describe(flyer_name: str, arrays: FlyArrays, readings: Mapping[str, Reading]
             ) -> dict[str, dict[str, Any]]:
    """``{data_key: DataKey}`` for every field, from CTRL readings keyed by PV."""
    return {arrays.key(flyer_name, field): data_key(pv, readings[pv])
            for field, pv in arrays.fields.items()}


def trim(arrays: FlyArrays, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The arrays keyed by field, all cut to the number of triggers (the time array's length).

    A controller appends the other arrays before the time array, so after the scan they are
    at least as long; a shorter one means the controller lost points, which is an error, not
    something to pad.
    """
    points = len(np.atleast_1d(values[arrays.fields[arrays.time_field]]))
    trimmed = {}
    for field, pv in arrays.fields.items():
        column = np.atleast_1d(np.asarray(values[pv]))
        if len(column) < points:
            raise ValueError(
                f"{pv} holds {len(column)} points but {arrays.fields[arrays.time_field]} "
                f"holds {points}: the controller lost points of {field!r}")
        trimmed[field] = column[:points]
    return trimmed


def event_pages(flyer_name: str, arrays: FlyArrays, columns: Mapping[str, np.ndarray],
                page_size: int = DEFAULT_PAGE_SIZE) -> Iterator[dict[str, Any]]:
    """Partial EventPages of at most ``page_size`` rows, timestamped with the trigger times.

    Values go out as plain lists: documents must serialise to JSON (and event-model's schema
    checks arrays as lists).
    """
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, got {page_size}")
    times = columns[arrays.time_field]
    for first in range(0, len(times), page_size):
        rows = slice(first, first + page_size)
        stamps = times[rows].tolist()
        yield {
            "time": stamps,
            "data": {arrays.key(flyer_name, field): column[rows].tolist()
                     for field, column in columns.items()},
            "timestamps": {arrays.key(flyer_name, field): stamps for field in columns},
        }
