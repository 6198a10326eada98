"""`PvflowSignalBackend`: ophyd-async signals over a pvflow Context (integration layer:
imports pvflow's public API and ophyd-async, never sockets or pvflow.ca).

It fulfils ``EpicsSignalBackend``'s contract: PV names are read at ``connect`` (a declarative
``EpicsDevice`` fills them in after construction), ``put`` waits for the server's
put-callback unless ``EpicsOptions.wait`` says otherwise, ``set_callback`` delivers every
update in order on the caller's event loop thread, starting with the current value.
"""

from __future__ import annotations

import asyncio
import math
import threading
from typing import Any

from bluesky.protocols import Reading as BlueskyReading
from event_model import DataKey, Limits, LimitsRange
from ophyd_async.core import (
    Callback,
    NotConnectedError,
    SignalDatatypeT,
    SignalMetadata,
    make_datakey,
)
from ophyd_async.epics.core import EpicsOptions
from ophyd_async.epics.core._util import EpicsSignalBackend

from ..context import Context, Subscription
from ..errors import PVFlowError
from ..reading import Reading
from .converters import Converter, make_converter

_LIMIT_NAMES = (("alarm", "alarm_limits"), ("control", "control_limits"),
                ("display", "display_limits"), ("warning", "warning_limits"))

_shared: Context | None = None
_shared_lock = threading.Lock()


def shared_context() -> Context:
    """The Context every backend uses unless given one (EPICS_* from the environment)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Context()
        return _shared


def _limits(reading: Reading) -> Limits:
    limits = Limits()
    for key, attribute in _LIMIT_NAMES:
        found = getattr(reading, attribute)
        if found is None:
            continue
        low, high = found
        if (math.isnan(low) and math.isnan(high)) or low == high == 0:
            continue
        limits[key] = LimitsRange(low=None if math.isnan(low) else low,  # type: ignore[misc]
                                  high=None if math.isnan(high) else high)
    return limits


def _metadata(datatype: Any, reading: Reading, base: SignalMetadata) -> SignalMetadata:
    """ophyd-async's rules: no units on str/bool, no precision on int, no limits on bool."""
    metadata = base.copy()
    if reading.units is not None and datatype not in (str, bool):
        metadata["units"] = reading.units
    if reading.precision is not None and datatype is not int:
        metadata["precision"] = reading.precision
    if (limits := _limits(reading)) and datatype is not bool:
        metadata["limits"] = limits
    return metadata


class PvflowSignalBackend(EpicsSignalBackend[SignalDatatypeT]):
    """A CA signal backend on pvflow (``pva://`` names once the Context routes them)."""

    def __init__(self, datatype: type[SignalDatatypeT] | None, read_pv: str = "",
                 write_pv: str = "", options: EpicsOptions | None = None,
                 context: Context | None = None):
        self.converter: Converter | None = None
        self.initial_values: dict[str, Any] = {}
        self.subscription: Subscription | None = None
        self._context = context
        super().__init__(datatype, read_pv, write_pv, options)

    @property
    def context(self) -> Context:
        return self._context or shared_context()

    def source(self, name: str, read: bool) -> str:
        pv = self.read_pv if read else self.write_pv
        return pv if "://" in pv else f"ca://{pv}"

    async def connect(self, timeout: float) -> None:
        """Connect both PVs, learn their types and metadata, remember the write PV's value
        (``put(None)`` writes it back, as SignalX.trigger expects)."""
        context = self.context
        names = list(dict.fromkeys((self.read_pv, self.write_pv)))
        try:
            await context.connect_async(names, timeout=timeout)
            readings = {name: await context.get_async(name, form="ctrl", timeout=timeout)
                        for name in names}
        except PVFlowError as error:
            raise NotConnectedError(self.source("", read=error.pv != self.write_pv)) from error
        kinds = {name: context.info(name) for name in names}
        shapes = {(info.native_type, info.element_count > 1) for info in kinds.values()}
        if len(shapes) > 1:
            raise TypeError(f"{self.read_pv} and {self.write_pv} differ in datatypes and "
                            f"element_count: {sorted(shapes)}")
        self.initial_values = {name: reading.value for name, reading in readings.items()}
        info = kinds[self.read_pv]
        self.converter = make_converter(self.read_pv, self.datatype, info.native_type,
                                        max(info.element_count for info in kinds.values()),
                                        readings[self.read_pv])

    def _converter(self) -> Converter:
        if self.converter is None:
            raise NotConnectedError(f"{self.source('', True)}: connect() has not been called")
        return self.converter

    def _make_reading(self, reading: Reading) -> BlueskyReading[SignalDatatypeT]:
        severity = reading.severity
        return {"value": self._converter().value(reading.value),
                "timestamp": reading.timestamp,  # type: ignore[typeddict-item]
                "alarm_severity": -1 if severity > 2 else severity}

    async def put(self, value: SignalDatatypeT | None) -> None:
        converter = self._converter()
        if value is None:
            wire = self.initial_values[self.write_pv]
        else:
            wire = converter.write_value(value)
        wait = self.options.wait(value) if callable(self.options.wait) else self.options.wait
        try:
            await self.context.put_async(self.write_pv, wire, wait=wait, timeout=None)
        except ValueError as error:
            choices = converter.metadata.get("choices")
            if choices and value not in choices:
                raise ValueError(f"{value} is not a valid choice for {self.write_pv}, "
                                 f"valid choices: {choices}") from error
            raise

    async def get_datakey(self, source: str) -> DataKey:
        converter = self._converter()
        reading = await self.context.get_async(self.read_pv, form="ctrl", timeout=None)
        metadata = _metadata(self.datatype, reading, converter.metadata)
        return make_datakey(converter.datatype, converter.value(reading.value), source,
                            metadata)

    async def get_reading(self) -> BlueskyReading[SignalDatatypeT]:
        return self._make_reading(await self.context.get_async(self.read_pv, form="time",
                                                               timeout=None))

    async def get_value(self) -> SignalDatatypeT:
        return self._converter().value(await self.context.get_async(self.read_pv, timeout=None))

    async def get_setpoint(self) -> SignalDatatypeT:
        return self._converter().value(await self.context.get_async(self.write_pv,
                                                                    timeout=None))

    def set_callback(self, callback: Callback[BlueskyReading[SignalDatatypeT]] | None) -> None:
        """Every update, in order, on the running loop's thread; the first is the current
        value (a new CA subscription starts with it)."""
        if callback and self.subscription:
            raise RuntimeError("Cannot set a callback when one is already set")
        if self.subscription:
            self.subscription.close()
            self.subscription = None
        if callback:
            loop = asyncio.get_running_loop()
            self.subscription = self.context.subscribe(
                self.read_pv, lambda reading: callback(self._make_reading(reading)),
                form="time", loop=loop)
