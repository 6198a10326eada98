"""The demo's step-scan devices, written straight on a pvflow Context (bluesky protocols).

Small on purpose: a setting that moves with a put-callback, the detector (trigger = one
acquisition, read = counts per channel) and a group of status PVs for the baseline stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
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


class DissDetector:
    """The Diss-compatible detector: trigger acquires once (``acquire`` 1, done when it falls
    back to 0, which the IOC does after publishing the images); read sums each channel's
    image."""

    def __init__(self, context: Context, prefix: str, channels: Sequence[str], name: str,
                 timeout: float = 30.0):
        self.context, self.prefix, self.name, self.parent = context, prefix, name, None
        self.channels = list(channels)
        self.timeout = timeout

    def _key(self, channel: str) -> str:
        return f"{self.name}_{channel}"

    def trigger(self) -> Status:
        state = self.context.get(self.prefix + "state", as_string=True)
        if state != "READY":
            error = self.context.get(self.prefix + "error", as_string=True)
            raise RuntimeError(f"{self.prefix}state is {state}, not READY ({error})")
        status = Status(obj=self, timeout=self.timeout)
        seen_busy = threading.Event()

        def on_acquire(value: Any) -> None:
            if int(value) == 1:
                seen_busy.set()
            elif seen_busy.is_set() and not status.done:
                subscription.close()
                status.set_finished()

        subscription = self.context.subscribe(self.prefix + "acquire", on_acquire,
                                              form="value")
        self.context.put(self.prefix + "acquire", 1, wait=False)
        return status

    def read(self) -> dict[str, Any]:
        pvs = [f"{self.prefix}{channel}:image" for channel in self.channels]
        images = self.context.get_many(pvs)
        _failed(images)
        now = time.time()
        return {self._key(channel): {"value": float(images[pv].sum()), "timestamp": now}
                for channel, pv in zip(self.channels, pvs)}

    def describe(self) -> dict[str, Any]:
        return {self._key(channel): {"source": f"PV:{self.prefix}{channel}:image",
                                     "dtype": "number", "shape": [], "units": "counts"}
                for channel in self.channels}


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
