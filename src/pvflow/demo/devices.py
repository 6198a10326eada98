"""The demo's step-scan devices, written straight on a pvflow Context (bluesky protocols).

Small on purpose: a setting that moves with a put-callback and a group of status PVs for the
baseline stream (the detector is :class:`pvflow.bluesky.diss_detector.DissDetector`).
"""

from __future__ import annotations

import time
from typing import Any

from ophyd.status import Status

from ..context import Context


def _failed(results: dict[str, Any]) -> None:
    for pv, value in results.items():
        if isinstance(value, BaseException):
            raise value


class PVSetting:
    """A Movable on one PV: ``set`` puts with a put-callback, done when the IOC is."""

    def __init__(self, context: Context, pv: str, name: str):
        self.context, self.pv, self.name, self.parent = context, pv, name, None

    def set(self, value: float) -> Status:
        status = Status(obj=self)

        def done(error: BaseException | None) -> None:
            status.set_finished() if error is None else status.set_exception(error)

        self.context.put(self.pv, value, callback=done)
        return status

    def read(self) -> dict[str, Any]:
        reading = self.context.get(self.pv, form="time")
        return {self.name: {"value": reading.value, "timestamp": reading.timestamp}}

    def describe(self) -> dict[str, Any]:
        reading = self.context.get(self.pv, form="ctrl")
        return {self.name: {"source": f"PV:{self.pv}", "dtype": "number", "shape": [],
                            "units": reading.units, "precision": reading.precision}}


class PVGroup:
    """Readable group of scalar or string PVs, read in one round trip (baseline readings)."""

    def __init__(self, context: Context, pvs: dict[str, str], name: str):
        self.context, self.pvs, self.name, self.parent = context, pvs, name, None

    def read(self) -> dict[str, Any]:
        readings = self.context.get_many(self.pvs.values(), form="time", as_string=True)
        _failed(readings)
        return {f"{self.name}_{key}": {"value": readings[pv].value,
                                       "timestamp": readings[pv].timestamp}
                for key, pv in self.pvs.items()}

    def describe(self) -> dict[str, Any]:
        return {f"{self.name}_{key}": {"source": f"PV:{pv}", "dtype": "string", "shape": []}
                for key, pv in self.pvs.items()}
