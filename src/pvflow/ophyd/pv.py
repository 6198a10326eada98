"""`PV`: the object ophyd's EpicsSignal talks to, backed by a pvflow Context (integration layer:
imports pvflow's public API and ophyd's dispatcher, never sockets or pvflow.ca).

It keeps pyepics' PV surface (``get_with_metadata``, ``put``, ``add_callback``, the three
callback kinds) with three differences that matter on a beamline:

- A fresh object per ``get_pv``: each has its own server-side subscription over the Context's
  shared channel, so two Devices on one prefix never share (or steal) callbacks.
- Monitor callbacks run on pvflow's callback workers, in order per PV, instead of ophyd's one
  ``monitor`` thread: a slow subscriber on one PV never delays another PV (a motor's DMOV).
- ``put(callback=...)`` returns at once; the callback runs exactly once when the server
  confirms (or refuses) the write.

Connection, access-rights and put-completion callbacks still go through ophyd's dispatcher
threads (``metadata``, ``get_put``), where ophyd expects them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ophyd._dispatch import wrap_callback

from ..chars import encode_chars
from ..context import DEFAULT
from ..errors import PVFlowError
from ..reading import Reading
from .fields import (
    CONTROL_KEYS,
    FIELDS,
    LONG_STRING_LENGTH,
    char_value,
    control_fields,
    dbr_native,
    is_array,
    time_fields,
)
from .flag import Flag
from .serial import SerialRunner

if TYPE_CHECKING:
    from .control_layer import ControlLayer

log = logging.getLogger("pvflow.ophyd")

DEFAULT_CONNECTION_TIMEOUT = 2.0  # pyepics' ca.DEFAULT_CONNECTION_TIMEOUT
FOREVER = 315569520.0  # "no timeout" as ten years, as ophyd's pyepics shim does
_ACCESS_TEXT = ("no access", "read-only", "write-only", "read/write")


class PV:
    """One ophyd-facing handle on one PV name (``ca://``, ``pva://`` or bare)."""

    def __init__(self, layer: ControlLayer, pvname: str, *, form: str = "time",
                 auto_monitor: Any = None, count: int | None = None,
                 connection_callback: Callable[..., None] | None = None,
                 access_callback: Callable[..., None] | None = None,
                 callback: Callable[..., None] | None = None,
                 connection_timeout: float | None = None):
        self.pvname = pvname
        self.form = form
        self.chid = None  # pyepics' channel id; ophyd only compares it with None
        self.context = None
        self.connected = False
        self.connection_timeout = connection_timeout or DEFAULT_CONNECTION_TIMEOUT
        self._reference_count = 0
        self.layer = layer
        self._user_count = count
        self._args: dict[str, Any] = dict.fromkeys(FIELDS)
        self._args.update(pvname=pvname, count=count, nelm=-1, type="unknown",
                          typefull="unknown", access="unknown")
        dispatcher = layer.dispatcher
        self.connection_callbacks = [wrap_callback(dispatcher, "metadata", connection_callback)] \
            if connection_callback is not None else []
        self.access_callbacks = [wrap_callback(dispatcher, "metadata", access_callback)] \
            if access_callback is not None else []
        self.callbacks: dict[int, tuple[Callable[..., None], dict[str, Any]]] = {}
        if callback is not None:
            self.callbacks[0] = (callback, {})
        self._connected_event = Flag(layer.flags)
        self._serial = SerialRunner(pvname)
        self._subscription: Any = None
        self._subscription_lock = threading.Lock()
        self._has_monitor_value = False
        self._native: tuple[str, int] | None = None
        self._put_complete: bool | None = None
        self._auto_monitor = auto_monitor
        self.metadata_event = Flag(layer.flags)  # the first CTRL metadata of this connection
        self.metadata_requested = False  # guarded by the layer's prefetcher
        self._closed = False
        if auto_monitor:
            self._subscribe()
        self._watch = layer.context.watch(pvname, self._on_connection,
                                          access_callback=self._on_access)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<pvflow PV {self.pvname!r} {state}>"

    # --- connection ------------------------------------------------------------------------------
    def _on_connection(self, connected: bool) -> None:
        """Watch callback (pvflow worker): connection state changed, in wire order."""
        if self._closed:
            return
        if not connected:
            self.connected = False
            self._connected_event.clear()
            self._native = None
            self.metadata_event.clear()
            self.metadata_requested = False
        for callback in list(self.connection_callbacks):
            callback(pvname=self.pvname, conn=connected, pv=self)
        if connected:
            self.connected = True
            self._connected_event.set()
            if self._auto_monitor is None:
                native_type, element_count = self.native()
                self.auto_monitor = element_count < LONG_STRING_LENGTH

    def _on_access(self, read: bool, write: bool) -> None:
        if self._closed:
            return
        self._args.update(read_access=read, write_access=write,
                          access=_ACCESS_TEXT[int(read) + 2 * int(write)])
        for callback in list(self.access_callbacks):
            callback(read, write, pv=self)

    def wait_for_connection(self, timeout: float | None = None) -> bool:
        """True once connected; False when ``timeout`` (default: connection timeout) passed."""
        return self._connected_event.wait(self.connection_timeout if timeout is None
                                          else timeout)

    def connect(self, timeout: float | None = None) -> bool:
        return self.wait_for_connection(timeout)

    def native(self) -> tuple[str, int]:
        """(native type name, element count) of the connected channel, fetched once."""
        found = self._native
        if found is None:
            info = self.layer.context.info(self.pvname)
            native_type, element_count = dbr_native(info.native_type, info.element_count)
            found = self._native = (native_type, element_count)
            self._args.update(nelm=element_count, type=native_type.lower(),
                              typefull=f"time_{native_type.lower()}", host=info.address,
                              count=min(element_count, self._user_count or element_count))
        return found

    @property
    def count(self) -> int | None:
        return self._args["count"]

    @property
    def nelm(self) -> int:
        return self._args["nelm"]

    @property
    def read_access(self) -> bool | None:
        return self._args["read_access"]

    @property
    def write_access(self) -> bool | None:
        return self._args["write_access"]

    @property
    def access(self) -> str:
        return self._args["access"]

    @property
    def put_complete(self) -> bool | None:
        return self._put_complete

    # --- monitors -------------------------------------------------------------------------------
    @property
    def auto_monitor(self) -> Any:
        return self._auto_monitor

    @auto_monitor.setter
    def auto_monitor(self, value: Any) -> None:
        self._auto_monitor = value
        if value:
            self._subscribe()
        elif value is False:
            self._unsubscribe()

    def _subscribe(self) -> None:
        with self._subscription_lock:
            if self._subscription is None and not self._closed:
                self._subscription = self.layer.context.subscribe(self.pvname,
                                                                   self._on_update)

    def _unsubscribe(self) -> None:
        with self._subscription_lock:
            subscription, self._subscription = self._subscription, None
            self._has_monitor_value = False
        if subscription is not None:
            subscription.close()

    def clear_auto_monitor(self) -> None:
        self.auto_monitor = False

    def _on_update(self, reading: Reading) -> None:
        """Subscription callback (pvflow worker, in order for this PV)."""
        self._serial.submit(self._deliver, reading)

    def _deliver(self, reading: Reading) -> None:
        if self._closed:
            return
        fields = time_fields(reading)
        fields["value"] = reading.value
        fields["char_value"] = self._char_value(reading.value)
        self._args.update(fields)
        self._has_monitor_value = True
        for index in sorted(self.callbacks):
            self._call(index, fields)

    def _call(self, index: int, fields: dict[str, Any]) -> None:
        try:
            function, extra = self.callbacks[index]
        except KeyError:
            return
        keywords = {**self._args, **fields, **extra, "cb_info": (index, self)}
        try:
            function(**keywords)
        except Exception:
            log.exception("%s: monitor callback %r failed", self.pvname, function)

    def _run_now(self, index: int) -> None:
        if self._has_monitor_value and not self._closed:
            self._call(index, {})

    def add_callback(self, callback: Callable[..., None] | None = None, index: int | None = None,
                     run_now: bool = False, with_ctrlvars: bool = True, **kw: Any) -> int | None:
        """Call ``callback(**fields)`` on every update; switches monitoring on (as ophyd's shims
        do). ``run_now`` delivers the latest value too, in order with the updates."""
        if callable(callback):
            if index is None:
                index = 1 + max(self.callbacks, default=0)
            self.callbacks[index] = (callback, kw)
        if with_ctrlvars and self.connected and not self.metadata_event.is_set():
            self.get_ctrlvars()
        if not self._auto_monitor:
            self.auto_monitor = True
        if run_now and index is not None and self._has_monitor_value:
            # Through ophyd's utility threads, never inline: the caller (ophyd's metadata
            # thread) must not end up draining a busy PV's updates.
            self.layer.dispatcher.schedule_utility_task(self._serial.submit, self._run_now,
                                                         index)
        return index

    def remove_callback(self, index: int | None = None) -> None:
        self.callbacks.pop(index, None)  # type: ignore[arg-type]

    def clear_callbacks(self, with_access_callback: bool = True,
                        with_connect_callback: bool = True) -> None:
        """Forget every callback (ophyd's shims clear access and connection callbacks too)."""
        self.callbacks.clear()
        if with_access_callback:
            self.access_callbacks.clear()
        if with_connect_callback:
            self.connection_callbacks.clear()

    def run_callbacks(self) -> None:
        for index in sorted(self.callbacks):
            self._serial.submit(self._run_now, index)

    # --- reads ----------------------------------------------------------------------------------
    def _char_value(self, value: Any, long_string: bool = False) -> Any:
        if isinstance(value, str):
            return value
        try:
            native_type, element_count = self.native()
        except PVFlowError:
            native_type, element_count = None, len(value) if is_array(value) else 1
        return char_value(value, native_type, element_count, self._args["precision"],
                          self._args["enum_strs"], long_string)

    def apply_control(self, reading: Reading) -> dict[str, Any]:
        """Keep a CTRL reading's metadata (and its alarm state and timestamp when no monitor
        runs); returns the pyepics-style metadata dict."""
        fields = control_fields(reading)
        if not self._has_monitor_value:
            fields.update(time_fields(reading))
        self._args.update(fields)
        return fields

    def get_with_metadata(self, count: int | None = None, as_string: bool = False,
                          as_numpy: bool = True, timeout: float | None = None,
                          with_ctrlvars: bool = False, form: str | None = None,
                          use_monitor: bool = True, as_namespace: bool = False) -> Any:
        """``{"value": ..., metadata...}``, or None when the PV does not answer in ``timeout``
        (ophyd turns None into ReadTimeoutError)."""
        if not self.wait_for_connection(timeout):
            return None
        form = form or self.form
        cached = self._args["value"]
        if (use_monitor and self._auto_monitor and self._has_monitor_value and form == "time"
                and (count is None or not is_array(cached) or count <= len(cached))):
            metadata = dict(self._args)
            value = cached if count is None or not is_array(cached) else cached[:count]
        else:
            try:
                reading = self.layer.context.get(
                    self.pvname, form=form, timeout=DEFAULT if timeout is None else timeout,
                    count=count)
            except PVFlowError as error:
                log.debug("%s: read failed: %s", self.pvname, error)
                return None
            metadata = {**self._args, **time_fields(reading)}
            if form == "ctrl":
                metadata.update(self.apply_control(reading))
            value = reading.value
        if as_string:
            value = self._char_value(value, long_string=True)
        elif not as_numpy and hasattr(value, "tolist"):
            value = value.tolist()
        metadata["value"] = value
        if as_namespace:
            from types import SimpleNamespace

            return SimpleNamespace(**metadata)
        return metadata

    def get(self, count: int | None = None, as_string: bool = False, as_numpy: bool = True,
            timeout: float | None = None, with_ctrlvars: bool = False,
            use_monitor: bool = True) -> Any:
        found = self.get_with_metadata(count=count, as_string=as_string, as_numpy=as_numpy,
                                       timeout=timeout, use_monitor=use_monitor)
        return None if found is None else found["value"]

    @property
    def value(self) -> Any:
        return self.get()

    @property
    def char_value(self) -> Any:
        return self.get(as_string=True)

    def get_ctrlvars(self, timeout: float = 5.0, warn: bool = True) -> dict[str, Any] | None:
        """The CTRL metadata (limits, units, precision, enum strings), read now."""
        if not self.wait_for_connection(timeout):
            return None
        try:
            # One element: the metadata does not depend on the value, and it spares the
            # transfer of a long array.
            reading = self.layer.context.get(self.pvname, form="ctrl", timeout=timeout, count=1)
        except PVFlowError as error:
            if warn:
                log.warning("%s: reading the control metadata failed: %s", self.pvname, error)
            return None
        self.apply_control(reading)
        self.metadata_event.set()
        return {key: self._args[key] for key in (*CONTROL_KEYS, "status", "severity")}

    def get_timevars(self, timeout: float = 5.0, warn: bool = True) -> dict[str, Any] | None:
        """Alarm state and timestamp, read now."""
        if not self.wait_for_connection(timeout):
            return None
        try:
            reading = self.layer.context.get(self.pvname, form="time", timeout=timeout, count=1)
        except PVFlowError as error:
            if warn:
                log.warning("%s: reading the alarm state failed: %s", self.pvname, error)
            return None
        fields = time_fields(reading)
        if not self._has_monitor_value:
            self._args.update(fields)
        return fields

    def metadata(self) -> dict[str, Any]:
        """Everything known about the PV except its value (what ophyd's metadata callback takes)."""
        found = dict(self._args)
        found.pop("value", None)
        return found

    def get_all_metadata_blocking(self, timeout: float | None) -> dict[str, Any]:
        """Time and control metadata, from the prefetch when it already arrived."""
        if not self.metadata_event.is_set():
            self.layer.prefetcher.fetch([self], timeout)
        return self.metadata()

    def get_all_metadata_callback(self, callback: Callable[[str, dict[str, Any]], None], *,
                                  timeout: float | None) -> None:
        """``callback(pvname, metadata)`` once the metadata arrived; many PVs asking at once
        share one bulk read."""
        self.layer.prefetcher.request(self, callback, timeout)

    # --- writes ---------------------------------------------------------------------------------
    def put(self, value: Any, wait: bool = False, timeout: float | None = None,
            use_complete: bool = False, callback: Callable[..., None] | None = None,
            callback_data: Any = None) -> None:
        """Write ``value``. With ``callback`` (or ``use_complete``) the server's put-callback is
        used and ``callback(pvname=..., data=callback_data)`` runs once it confirms; with
        ``wait`` the call returns only then."""
        if not self.wait_for_connection(timeout):
            raise TimeoutError(f"{self.pvname}: not connected, cannot put {value!r}")
        value = self._wire_value(value)
        context = self.layer.context
        seconds = FOREVER if timeout is None else timeout
        if not (wait or use_complete or callback is not None):
            context.put(self.pvname, value, wait=False, timeout=seconds)
            return
        self._put_complete = False
        if wait:
            try:
                context.put(self.pvname, value, wait=True, timeout=seconds)
            finally:
                self._put_complete = True
            if callback is not None:
                wrap_callback(self.layer.dispatcher, "get_put", callback)(
                    pvname=self.pvname, data=callback_data)
            return
        notify = wrap_callback(self.layer.dispatcher, "get_put", callback) \
            if callback is not None else None

        def confirmed(error: BaseException | None) -> None:
            if error is not None:
                log.warning("%s: put of %r failed: %s", self.pvname, value, error)
            self._put_complete = True
            if notify is not None:
                notify(pvname=self.pvname, data=callback_data)

        context.put(self.pvname, value, timeout=seconds, callback=confirmed)

    def _wire_value(self, value: Any) -> Any:
        """Text written to a char waveform goes as its bytes plus a NUL (as pyepics does)."""
        if isinstance(value, str):
            native_type, element_count = self.native()
            if native_type == "CHAR" and element_count > 1:
                return encode_chars(value, element_count)
        return value

    # --- lifetime -------------------------------------------------------------------------------
    def disconnect(self, deepclean: bool = True) -> None:
        """Stop every subscription and watch of this object (the shared channel stays)."""
        self._closed = True
        self.clear_callbacks()
        self._unsubscribe()
        self._watch.close()
        self.connected = False
        self._connected_event.clear()
