"""`PvflowSignalBackend`: ophyd-async signals over a pvflow Context, CA and pvAccess alike
(integration layer: imports pvflow's public API and ophyd-async, never sockets or engines).

It fulfils ``EpicsSignalBackend``'s contract: PV names are read at ``connect`` (a declarative
``EpicsDevice`` fills them in after construction), ``put`` waits for the server's
put-callback unless ``EpicsOptions.wait`` says otherwise, ``set_callback`` delivers every
update in order on the caller's event loop thread, starting with the current value.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from bluesky.protocols import Reading as BlueskyReading
from event_model import DataKey
from ophyd_async.core import (Callback, NotConnectedError, SignalBackend, SignalDatatypeT,
                              make_datakey)
from ophyd_async.epics.core import EpicsOptions

from ..context import Context, Subscription
from ..errors import PVFlowError
from ..reading import Reading
from .converters import Converter, Native, make_converter, metadata, pva_native

_shared: Context | None = None
_shared_lock = threading.Lock()


def shared_context() -> Context:
    """The Context every backend uses unless given one (EPICS_* from the environment)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Context()
        return _shared


def with_scheme(pv: str, protocol: str) -> str:
    """``pv`` as a Context name: ophyd-async strips the scheme before it builds a backend."""
    return pv if "://" in pv else f"{protocol}://{pv}"


def native_of(context: Context, name: str, reading: Reading) -> Native:
    """What ``name`` holds. CA says so when the channel connects; over pvAccess the type
    reaches the client with the value, so it is read off ``reading``."""
    if name.startswith("pva://"):
        return pva_native(reading)
    info = context.info(name)
    return Native(info.native_type, info.element_count > 1, info.element_count)


class PvflowSignalBackend(SignalBackend[SignalDatatypeT]):
    """A signal backend on pvflow; PV names without a scheme are ``protocol`` (CA here).

    It has the attributes of ophyd-async's EPICS backends (``read_pv``, ``write_pv``,
    ``options``), which its declarative devices fill in; their base class is private
    (``ophyd_async.epics.core._util``), so this one derives from the public SignalBackend.
    """

    protocol = "ca"

    def __init__(self, datatype: type[SignalDatatypeT] | None, read_pv: str = "",
                 write_pv: str = "", options: EpicsOptions | None = None,
                 context: Context | None = None):
        self.converter: Converter | None = None
        self.initial_values: dict[str, Any] = {}
        self.subscription: Subscription | None = None
        self._context = context
        self.read_pv = read_pv
        self.write_pv = write_pv
        self.options: EpicsOptions = options or EpicsOptions()
        super().__init__(datatype)

    @property
    def context(self) -> Context:
        return self._context or shared_context()

    def source(self, name: str, read: bool) -> str:
        return with_scheme(self.read_pv if read else self.write_pv, self.protocol)

    async def connect(self, timeout: float) -> None:
        """Connect both PVs, learn their types and metadata, remember the write PV's value
        (``put(None)`` writes it back, as SignalX.trigger expects)."""
        context = self.context
        names = list(dict.fromkeys((self.source("", True), self.source("", False))))
        try:
            await context.connect_async(names, timeout=timeout)
            readings = {name: await context.get_async(name, form="ctrl", timeout=timeout)
                        for name in names}
        except PVFlowError as error:
            raise NotConnectedError(self._failed_source(error)) from error
        natives = {name: native_of(context, name, reading) for name, reading in readings.items()}
        shapes = {(native.type, native.is_array) for native in natives.values()}
        if len(shapes) > 1:
            raise TypeError(f"{self.read_pv} and {self.write_pv} differ in datatypes and "
                            f"element_count: {sorted(shapes)}")
        self.initial_values = {name: reading.value for name, reading in readings.items()}
        read = self.source("", True)
        self.converter = make_converter(self.read_pv, self.datatype, natives[read],
                                        readings[read])

    def _failed_source(self, error: PVFlowError) -> str:
        failed = (error.pv or "").split("://")[-1]
        return self.source("", read=failed != self.write_pv)

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
        write = self.source("", False)
        if value is None:
            wire = self.initial_values[write]
        else:
            wire = converter.write_value(value)
        wait = self.options.wait(value) if callable(self.options.wait) else self.options.wait
        try:
            await self.context.put_async(write, wire, wait=wait, timeout=None)
        except ValueError as error:
            choices = converter.metadata.get("choices")
            if choices and value not in choices:
                raise ValueError(f"{value} is not a valid choice for {self.write_pv}, "
                                 f"valid choices: {choices}") from error
            raise

    async def get_datakey(self, source: str) -> DataKey:
        converter = self._converter()
        reading = await self.context.get_async(self.source("", True), form="ctrl",
                                               timeout=None)
        return make_datakey(converter.datatype, converter.value(reading.value), source,
                            metadata(converter, reading))

    async def get_reading(self) -> BlueskyReading[SignalDatatypeT]:
        return self._make_reading(await self.context.get_async(self.source("", True),
                                                               form="time", timeout=None))

    async def get_value(self) -> SignalDatatypeT:
        return self._converter().value(await self.context.get_async(self.source("", True),
                                                                    timeout=None))

    async def get_setpoint(self) -> SignalDatatypeT:
        return self._converter().value(await self.context.get_async(self.source("", False),
                                                                    timeout=None))

    def set_callback(self, callback: Callback[BlueskyReading[SignalDatatypeT]] | None) -> None:
        """Every update, in order, on the running loop's thread; the first is the current
        value (a new CA or pvAccess monitor starts with it)."""
        if callback and self.subscription:
            raise RuntimeError("Cannot set a callback when one is already set")
        if self.subscription:
            self.subscription.close()
            self.subscription = None
        if callback:
            loop = asyncio.get_running_loop()
            self.subscription = self.context.subscribe(
                self.source("", True), lambda reading: callback(self._make_reading(reading)),
                form="time", loop=loop)


class PvflowPvaSignalBackend(PvflowSignalBackend[SignalDatatypeT]):
    """:class:`PvflowSignalBackend` for PV names without a scheme that are pvAccess: what
    ophyd-async builds for ``pva://`` names and for PVI-discovered signals."""

    protocol = "pva"
