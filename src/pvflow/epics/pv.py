"""`PV` and `get_pv`: pyepics' process-variable object over a pvflow Context (integration
layer: imports pvflow's public API, never sockets or pvflow.ca).

Same constructor, methods, properties, callback keywords and return values as ``epics.PV``
(pyepics 3.5), with these differences:

- Monitor callbacks run on pvflow's callback workers, in order per PV, instead of libca's
  thread: a slow callback on one PV never delays another PV.
- ``put(callback=...)`` returns at once; the callback runs exactly once, when the server
  confirms the write.
- ``monitor_delta`` is applied here, in the client: pyepics first tries to write the record's
  MDEL, which changes the IOC for every other client.
- ``ca://`` and ``pva://`` names work alike.

pvflow's ophyd control layer subclasses this class, as ophyd's pyepics shim subclasses
``epics.PV``, to route callbacks through ophyd's dispatcher.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

from ..context import DEFAULT
from ..errors import DisconnectedError, PVFlowError, PVTimeoutError
from ..reading import Reading
from . import dbr
from .contexts import CONTEXT
from .exceptions import ChannelAccessException, ChannelAccessGetFailure
from .fields import (
    CONTROL_KEYS,
    FIELDS,
    LONG_STRING_LENGTH,
    char_value,
    control_fields,
    dbr_native,
    is_array,
    read_metadata,
    time_fields,
)
from .flag import Flag
from .info import describe, fmt_time
from .pv_fields import FieldProperties
from .serial import SerialRunner
from .session import Host, default_session, on_forget
from .values import wire_value

log = logging.getLogger("pvflow.epics")

DEFAULT_CONNECTION_TIMEOUT = 2.0  # pyepics' ca.DEFAULT_CONNECTION_TIMEOUT
FOREVER = 315569520.0  # "no timeout" as ten years, as ophyd's pyepics shim does
FIRST_VALUE_WAIT = 1.0  # seconds a get waits for a new monitor's first value, then reads
_ACCESS_TEXT = ("no access", "read-only", "write-only", "read/write")
_TIME_KEYS = ("status", "severity", "timestamp", "posixseconds", "nanoseconds")


class PV(FieldProperties):
    """One handle on one PV name (``ca://``, ``pva://`` or bare)."""

    _fmtsca = "<PV '%(pvname)s', count=%(count)i, type=%(typefull)s, access=%(access)s>"
    _fmtarr = ("<PV '%(pvname)s', count=%(count)i/%(nelm)i, type=%(typefull)s, "
               "access=%(access)s>")
    _fields = FIELDS

    def __init__(self, pvname: str, callback: Any = None, form: str = "time",
                 verbose: bool = False, auto_monitor: Any = None, count: int | None = None,
                 connection_callback: Callable[..., None] | None = None,
                 connection_timeout: float | None = None,
                 access_callback: Callable[..., None] | None = None,
                 monitor_delta: float | None = None, *, session: Host | None = None):
        self.session: Host = session or default_session()
        self.pvname = pvname.strip()
        self.form = form.lower()
        self.verbose = verbose
        self.ftype: int | None = None
        self._chid: Any = None
        self.context = CONTEXT
        self.connected = False
        self.connection_timeout = connection_timeout or DEFAULT_CONNECTION_TIMEOUT
        self._user_count = count
        self._args: dict[str, Any] = dict.fromkeys(FIELDS)
        self._args.update(pvname=self.pvname, count=count, nelm=-1, type="unknown",
                          typefull="unknown", access="unknown", monitor_delta=monitor_delta)
        self.connection_callbacks = [self._wrap("metadata", connection_callback)] \
            if connection_callback is not None else []
        self.access_callbacks = [self._wrap("metadata", access_callback)] \
            if access_callback is not None else []
        self.callbacks: dict[int, tuple[Callable[..., None], dict[str, Any]]] = {}
        for index, function in enumerate(callback if isinstance(callback, (tuple, list))
                                         else [callback]):
            if callable(function):
                self.callbacks[index] = (function, {})
        flags = self.session.flags
        self._connected_event = Flag(flags)
        self.metadata_event = Flag(flags)  # the first CTRL metadata of this connection
        self._monitor_value_event = Flag(flags)  # the monitor delivered a value
        self.metadata_requested = False  # guarded by ophyd's metadata prefetcher
        self._serial = SerialRunner(self.pvname)
        self._subscription: Any = None
        self._subscription_lock = threading.Lock()
        self._has_monitor_value = False
        self._monitor_last_value: Any = None
        self._native: tuple[str, int] | None = None
        self._put_complete: bool | None = None
        self._auto_monitor = auto_monitor
        self._watch: Any = None
        self._connection_from_monitor = False
        self._closed = True
        self._open()

    def _wrap(self, kind: str, callback: Callable[..., Any]) -> Callable[..., Any]:
        return self.session.wrap(kind, callback)

    @property
    def chid(self) -> Any:
        """The ``epics.ca`` channel of this name, for scripts that mix PV and ca calls (made
        on first use: most PVs never need one)."""
        if self._chid is None:
            from .ca import create_channel

            self._chid = self._args["chid"] = create_channel(self.pvname)
        return self._chid

    def _open(self) -> None:
        """Start monitoring (unless ``auto_monitor`` is False) and watching the channel.

        With ``auto_monitor=None`` pyepics decides at connect (arrays of 65536 elements and
        more are not monitored); subscribing up front instead lets the monitor requests of
        many PVs go out with their connection, and the rare long array unsubscribes. A CA PV
        that monitors and has no access callback learns of its connection from its
        subscription (and of its access rights from the channel at connect): one mailbox per
        PV instead of two."""
        self._closed = False
        monitor = self._auto_monitor or self._auto_monitor is None
        self._connection_from_monitor = bool(monitor and not self.access_callbacks
                                             and not self.pvname.startswith("pva://"))
        if monitor:
            self._subscribe()
        if not self._connection_from_monitor:
            self.watch_access()

    def watch_access(self) -> None:
        """Follow access-rights changes (and connection changes) through a watch."""
        if self._watch is None and not self._closed:
            self._watch = self.session.context.watch(self.pvname, self._on_connection,
                                                     access_callback=self._on_access)

    def __repr__(self) -> str:
        if not self.connected:
            return f"<PV '{self.pvname}': not connected>"
        return (self._fmtsca if self.count == 1 else self._fmtarr) % self._args

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PV) and other.pvname == self.pvname and \
            other.session is self.session

    __hash__ = object.__hash__

    # --- connection ------------------------------------------------------------------------------
    def _on_connection(self, connected: bool) -> None:
        """Connection changes (pvflow worker), in wire order. As in pyepics, the connection
        callbacks run before ``connected`` turns True."""
        if self._closed or connected == self.connected:
            return  # a watch starts with the current state; only changes are reported
        if connected:
            if self._auto_monitor is None or not self.pvname.startswith("pva://"):
                try:  # a CA channel knows this locally; pvAccess asks the server: if needed
                    self.native()
                except PVFlowError as error:  # lost again while asking: the next event follows
                    log.debug("%s: channel type unknown: %s", self.pvname, error)
        else:
            self.connected = False
            self._connected_event.clear()
            self._native = None
            self.metadata_event.clear()
            self.metadata_requested = False
        for callback in list(self.connection_callbacks):
            try:
                callback(pvname=self.pvname, conn=connected, pv=self)
            except Exception:
                log.exception("%s: connection callback %r failed", self.pvname, callback)
        if connected:
            self.connected = True
            self._connected_event.set()
            if self._auto_monitor is None and self._native is not None:
                self.auto_monitor = self._native[1] < LONG_STRING_LENGTH

    def _on_access(self, read: bool, write: bool) -> None:
        if self._closed:
            return
        self._args.update(read_access=read, write_access=write,
                          access=_ACCESS_TEXT[int(read) + 2 * int(write)])
        for callback in list(self.access_callbacks):
            try:
                callback(read, write, pv=self)
            except Exception:
                log.exception("%s: access callback %r failed", self.pvname, callback)

    def wait_for_connection(self, timeout: float | None = None) -> bool:
        """True once connected; False when ``timeout`` (default: the connection timeout)
        passed or the PV was disconnected."""
        if self._closed:
            return False
        return self._connected_event.wait(self.connection_timeout if timeout is None
                                          else timeout)

    def connect(self, timeout: float | None = None) -> bool:
        return self.wait_for_connection(timeout)

    def force_connect(self, pvname: str | None = None, chid: Any = None, conn: bool = True,
                      **kws: Any) -> None:
        """Start watching again after ``disconnect()`` (pyepics re-runs its connect handler)."""
        if self._closed:
            self._open()

    def reconnect(self) -> bool:
        self.force_connect()
        return self.wait_for_connection()

    def native(self) -> tuple[str, int]:
        """(native type name, element count) of the connected channel, fetched once."""
        found = self._native
        if found is None:
            info = self.session.context.info(self.pvname)
            native_type, element_count = dbr_native(info.native_type, info.element_count)
            found = self._native = (native_type, element_count)
            code = dbr.CODES.get(native_type)
            full = native_type.lower()
            if code is not None:
                self.ftype = dbr.promote_fieldtype(code, use_time=self.form == "time",
                                                   use_ctrl=self.form == "ctrl")
                full = str(dbr.Name(self.ftype)).lower()
            self._args.update(nelm=element_count, type=full, typefull=full, ftype=self.ftype,
                              host=info.address,
                              read_access=info.read_access, write_access=info.write_access,
                              access=_ACCESS_TEXT[int(info.read_access)
                                                  + 2 * int(info.write_access)],
                              count=min(element_count, self._user_count or element_count))
        return found

    def force_read_access_rights(self) -> None:
        """Access rights are pushed by the server and always current: nothing to read."""

    def poll(self, evt: float = 1.e-4, iot: float = 1.0) -> None:
        """Callbacks arrive by themselves; this only yields, as pyepics' poll does."""
        time.sleep(evt)

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

    @property
    def auto_monitor_mask(self) -> int | None:
        return None if self._subscription is None else self._mask()

    def _mask(self) -> int:
        value = self._auto_monitor
        if value is True or not isinstance(value, int):
            return dbr.DBE_VALUE | dbr.DBE_ALARM
        return int(value)

    def _subscribe(self) -> None:
        with self._subscription_lock:
            if self._subscription is None and not self._closed:
                self._subscription = self.session.context.subscribe(
                    self.pvname, self._on_update, mask=self._mask(),
                    connection_callback=self._on_connection
                    if self._connection_from_monitor else None)

    def _unsubscribe(self) -> None:
        with self._subscription_lock:
            subscription, self._subscription = self._subscription, None
            self._has_monitor_value = False
            self._monitor_value_event.clear()
        if subscription is not None:
            subscription.close()
            if self._connection_from_monitor:
                self._connection_from_monitor = False
                self.watch_access()

    def clear_auto_monitor(self) -> None:
        self.auto_monitor = False

    def _on_update(self, reading: Reading) -> None:
        """Subscription callback (pvflow worker, in order for this PV)."""
        self._serial.submit(self._deliver, reading)

    def _deliver(self, reading: Reading) -> None:
        if self._closed:
            return
        value = reading.value
        if self._user_count and is_array(value) and len(value) > self._user_count:
            value = value[:self._user_count]
        if self._below_monitor_delta(value):
            return
        fields = time_fields(reading)
        # char_value is text formatting: done for the callbacks that receive it, otherwise
        # left for the char_value property to compute when asked.
        fields.update(value=value, count=len(value) if is_array(value) else 1,
                      char_value=self._char_value(value, fetch=False) if self.callbacks
                      else None)
        self._args.update(fields)
        self._has_monitor_value = True
        self._monitor_value_event.set()
        for index in sorted(self.callbacks):
            self._call(index, {})

    def _below_monitor_delta(self, value: Any) -> bool:
        delta = self._args["monitor_delta"]
        if delta is None or is_array(value):
            return False
        last, self._monitor_last_value = self._monitor_last_value, value
        try:
            if abs(value - last) < delta:
                self._monitor_last_value = last
                return True
        except TypeError:
            pass
        return False

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

    def run_callback(self, index: int) -> None:
        """Run one callback with the latest value, in order with the updates."""
        if self._args["value"] is not None:
            self._serial.submit(self._call, index, {})

    def run_callbacks(self) -> None:
        for index in sorted(self.callbacks):
            self.run_callback(index)

    def add_callback(self, callback: Callable[..., None] | None = None,
                     index: int | None = None, run_now: bool = False,
                     with_ctrlvars: bool = True, **kw: Any) -> int | None:
        """Call ``callback(**fields)`` on every update, with ``kw`` added to the keywords.
        ``run_now`` delivers the latest value too, in order with the updates."""
        if callable(callback):
            if index is None:
                index = 1 + max(self.callbacks, default=0)
            self.callbacks[index] = (callback, kw)
        if with_ctrlvars and self.connected and not self.metadata_event.is_set():
            self.get_ctrlvars()
        if run_now and index is not None:
            self.get(as_string=True)
            if self.connected:
                self.run_callback(index)
        return index

    def remove_callback(self, index: int | None = None) -> None:
        self.callbacks.pop(index, None)  # type: ignore[arg-type]

    def clear_callbacks(self, with_access_callback: bool = False,
                        with_connect_callback: bool = False) -> None:
        self.callbacks.clear()
        if with_access_callback:
            self.access_callbacks.clear()
        if with_connect_callback:
            self.connection_callbacks.clear()

    # --- reads ----------------------------------------------------------------------------------
    def _char_value(self, value: Any, long_string: bool = False, fetch: bool = True) -> Any:
        """pyepics' text of ``value``; reads the precision or enum strings first if needed."""
        if isinstance(value, str):
            return value
        try:
            native_type, element_count = self.native()
        except PVFlowError:
            native_type, element_count = None, len(value) if is_array(value) else 1
        if fetch and element_count == 1 and not self.metadata_event.is_set() and \
                native_type in ("FLOAT", "DOUBLE", "ENUM"):
            self.get_ctrlvars(warn=False)
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

    def _read(self, form: str, count: int | None, timeout: float | None) -> Reading | None:
        """A read from the server: None when it does not answer (or the channel drops), and
        ChannelAccessGetFailure when it refuses, as pyepics."""
        try:
            return self.session.context.get(
                self.pvname, form="value" if form == "native" else form,
                timeout=DEFAULT if timeout is None else timeout, count=count)
        except (PVTimeoutError, DisconnectedError) as error:
            log.debug("%s: read failed: %s", self.pvname, error)
            return None
        except PVFlowError as error:
            raise ChannelAccessGetFailure(f"{self.pvname}: get failed: {error}",
                                          chid=self._chid, status=dbr.ECA_BADCHID) from error

    def get_with_metadata(self, count: int | None = None, as_string: bool = False,
                          as_numpy: bool = True, timeout: float | None = None,
                          with_ctrlvars: bool = False, form: str | None = None,
                          use_monitor: bool = True, as_namespace: bool = False) -> Any:
        """``{"value": ..., metadata...}``: everything known when the monitor's value is used,
        the keys of ``form`` otherwise; None when the PV does not answer in ``timeout``."""
        if not self.wait_for_connection(timeout):
            return None
        form = (form or self.form).lower()
        monitored = use_monitor and self._auto_monitor and form == self.form and \
            self._first_monitor_value(timeout)
        cached = self._args["value"]  # (read after the wait for the first value)
        if monitored and (count is None or not is_array(cached) or count <= len(cached)):
            metadata = dict(self._args)
            value = cached
        else:
            if count is None and self._user_count:
                count = self._args["count"]
            reading = self._read(form, count, timeout)
            if reading is None:
                return None
            metadata = read_metadata(reading, form)
            value = reading.value if form != "native" else reading
            self._args.update(metadata)
            if form == "ctrl":
                self.metadata_event.set()
            if with_ctrlvars and form != "ctrl":
                metadata = dict(self._args)
        metadata["value"] = self._shaped(value, count, as_string, as_numpy)
        return SimpleNamespace(**metadata) if as_namespace else metadata

    def _shaped(self, value: Any, count: int | None, as_string: bool, as_numpy: bool) -> Any:
        """An array channel's value as numpy array or list, cut to ``count``; text when
        ``as_string``."""
        if as_string:
            return self._char_value(value, long_string=True)
        if value is None or self._args["nelm"] is None or self._args["nelm"] <= 1:
            return value
        if not is_array(value):
            value = [value]
        if as_numpy and not isinstance(value, np.ndarray):
            value = np.asarray(value)
        elif not as_numpy:
            value = value.tolist() if isinstance(value, np.ndarray) else list(value)
        if count is not None and count < len(value):
            value = value[:count]
        return value

    def get(self, count: int | None = None, as_string: bool = False, as_numpy: bool = True,
            timeout: float | None = None, with_ctrlvars: bool = False,
            use_monitor: bool = True) -> Any:
        if (use_monitor and count is None and not as_string and not with_ctrlvars
                and self._auto_monitor and self.connected and self.form == "time"
                and self._first_monitor_value(timeout)):  # the monitor's latest value
            value = self._args["value"]
            return value if self._args["nelm"] <= 1 else \
                self._shaped(value, None, False, as_numpy)
        found = self.get_with_metadata(count=count, as_string=as_string, as_numpy=as_numpy,
                                       timeout=timeout, with_ctrlvars=with_ctrlvars,
                                       use_monitor=use_monitor)
        return None if found is None else found["value"]

    def _first_monitor_value(self, timeout: float | None) -> bool:
        """Whether the monitor has a value, waiting for its first one if it is on its way: the
        subscription went out with the connection, so its answer is due as soon as a read's
        would be."""
        if self._has_monitor_value:
            return True
        if self._subscription is None:
            return False
        return self._monitor_value_event.wait(FIRST_VALUE_WAIT if timeout is None
                                              else min(timeout, FIRST_VALUE_WAIT))

    def _read_metadata_only(self, form: str, timeout: float, warn: bool) -> Reading | None:
        """A ``form`` read of one element: the metadata does not depend on the value, and it
        spares the transfer of a long array."""
        if not self.wait_for_connection():
            return None
        try:
            return self.session.context.get(self.pvname, form=form, timeout=timeout, count=1)
        except PVFlowError as error:
            if warn:
                log.warning("%s: reading the %s metadata failed: %s", self.pvname, form, error)
            return None

    def get_ctrlvars(self, timeout: float = 5.0, warn: bool = True) -> dict[str, Any] | None:
        """The CTRL metadata (limits, units, precision, enum strings, alarm state), read now."""
        reading = self._read_metadata_only("ctrl", timeout, warn)
        if reading is None:
            return None
        self.apply_control(reading)
        self.metadata_event.set()
        found = {key: self._args[key] for key in CONTROL_KEYS if self._args[key] is not None}
        found.update(status=reading.status, severity=reading.severity)
        return found

    def get_timevars(self, timeout: float = 5.0, warn: bool = True) -> dict[str, Any] | None:
        """Alarm state and timestamp, read now."""
        reading = self._read_metadata_only("time", timeout, warn)
        if reading is None:
            return None
        fields = time_fields(reading)
        if not self._has_monitor_value:
            self._args.update(fields)
        return fields

    # --- properties -----------------------------------------------------------------------------
    def _getarg(self, arg: str) -> Any:
        """A field, read when still unknown (value first, then TIME or CTRL metadata)."""
        if self._args["value"] is None:
            self.get()
        if self._args[arg] is None and self.connected:
            if arg in _TIME_KEYS:
                self.get_timevars(timeout=1, warn=False)
            elif arg in CONTROL_KEYS:
                self.get_ctrlvars(timeout=1, warn=False)
        return self._args.get(arg)

    @property
    def info(self) -> str | None:
        """pyepics' printable paragraph about the PV."""
        if not self.wait_for_connection():
            return None
        self.get_ctrlvars()
        return describe(self)

    # --- writes ---------------------------------------------------------------------------------
    def put(self, value: Any, wait: bool = False, timeout: float | None = 30.0,
            use_complete: bool = False, callback: Callable[..., None] | None = None,
            callback_data: Any = None) -> int | None:
        """Write ``value``: 1 once sent (or, with ``wait``, confirmed), -1 when ``wait`` timed
        out, None when the PV is not connected. With ``callback`` the server's put-callback is
        used and ``callback(pvname=..., data=callback_data)`` runs once it confirms (a dict
        ``callback_data`` is passed as keywords); ``use_complete`` sets ``put_complete``."""
        if not self.wait_for_connection():
            return None
        value = self._wire_value(value)
        context = self.session.context
        seconds = FOREVER if timeout is None else timeout
        if not (wait or use_complete or callable(callback)):
            self._convert_errors(value, lambda: context.put(self.pvname, value, wait=False,
                                                            timeout=seconds))
            return 1
        self._put_complete = False
        notify = self._put_notifier(value, callback, callback_data)
        if not wait:
            self._convert_errors(value, lambda: context.put(self.pvname, value,
                                                            timeout=seconds, callback=notify))
            return 1
        try:
            self._convert_errors(value, lambda: context.put(self.pvname, value, wait=True,
                                                            timeout=seconds))
        except PVTimeoutError as error:
            return self._put_failed(error)
        except PVFlowError as error:
            notify(error)
            return self._put_failed(error)
        notify(None)
        return 1

    def _put_notifier(self, value: Any, callback: Callable[..., None] | None,
                      callback_data: Any) -> Callable[[BaseException | None], None]:
        keywords = callback_data if isinstance(callback_data, dict) else {"data": callback_data}
        run = self._wrap("get_put", callback) if callable(callback) else None

        def confirmed(error: BaseException | None) -> None:
            if error is not None:
                log.warning("%s: put of %r failed: %s", self.pvname, value, error)
            self._put_complete = True
            if run is not None:
                try:
                    run(pvname=self.pvname, **keywords)
                except Exception:
                    log.exception("%s: put callback %r failed", self.pvname, callback)

        return confirmed

    def _put_failed(self, error: PVFlowError) -> int:
        """What a failed put with ``wait`` returns (ophyd's layer raises instead)."""
        log.warning("%s: put failed: %s", self.pvname, error)
        return -1

    def _convert_errors(self, value: Any, send: Callable[[], None]) -> None:
        try:
            send()
        except (ValueError, TypeError) as error:
            raise ChannelAccessException(f"{self.pvname}: cannot put {value!r}: {error}") \
                from error

    def _wire_value(self, value: Any) -> Any:
        native_type, element_count = self.native()
        try:
            return wire_value(value, native_type, element_count)
        except ValueError as error:
            raise ChannelAccessException(f"{self.pvname}: cannot put {value!r}: {error}") \
                from error

    # --- lifetime -------------------------------------------------------------------------------
    def disconnect(self, deepclean: bool = True) -> None:
        """Stop this object's subscription, watch and callbacks (the shared channel stays);
        ``force_connect()`` or ``reconnect()`` start it again."""
        if _cache.get(self._cache_key()) is self:
            _cache.pop(self._cache_key(), None)
        self._closed = True
        self.clear_callbacks(True, True)
        self._unsubscribe()
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        self.connected = False
        self._connected_event.clear()
        self._native = None
        self.metadata_event.clear()
        pvname, monitor_delta = self.pvname, self._args["monitor_delta"]
        self._args = dict.fromkeys(FIELDS)
        self._args.update(pvname=pvname, count=self._user_count, nelm=-1, type="unknown",
                          typefull="unknown", access="unknown", monitor_delta=monitor_delta)

    def _cache_key(self) -> tuple[str, str, int]:
        return (self.pvname, self.form, id(self.session))


_cache: dict[tuple[str, str, int], PV] = {}
_cache_lock = threading.Lock()
default_pv_class = PV


def get_pv(pvname: str, form: str = "time", connect: bool = False, context: Any = None,
           timeout: float = 5.0, connection_callback: Callable[..., None] | None = None,
           access_callback: Callable[..., None] | None = None, callback: Any = None,
           verbose: bool = False, count: int | None = None, auto_monitor: Any = None,
           monitor_delta: float | None = None) -> PV:
    """The cached PV for ``pvname`` and ``form`` (created on first use), as pyepics'
    ``get_pv``: callbacks given for a cached PV are added to it and run at once when it is
    connected."""
    if form not in ("native", "time", "ctrl"):
        form = "time"
    session = default_session()
    key = (pvname.pvname if isinstance(pvname, PV) else pvname.strip(), form, id(session))
    with _cache_lock:
        found = _cache.get(key)
        created = found is None
        if created:
            found = _cache[key] = default_pv_class(
                key[0], form=form, callback=callback, connection_callback=connection_callback,
                access_callback=access_callback, connection_timeout=timeout, count=count,
                verbose=verbose, auto_monitor=auto_monitor, monitor_delta=monitor_delta)
    assert found is not None
    if not created:
        _extend(found, connection_callback, access_callback, callback, auto_monitor)
    if connect and not found.wait_for_connection(timeout=timeout):
        log.warning("cannot connect to %s", pvname)
    return found


def _extend(pv: PV, connection_callback: Callable[..., None] | None,
            access_callback: Callable[..., None] | None, callback: Any,
            auto_monitor: Any) -> None:
    if connection_callback is not None:
        if pv.connected:
            connection_callback(pvname=pv.pvname, conn=True, pv=pv)
        pv.connection_callbacks.append(connection_callback)
    if access_callback is not None:
        pv.watch_access()
        if pv.connected:
            access_callback(pv.read_access, pv.write_access, pv=pv)
        pv.access_callbacks.append(access_callback)
    if callback is not None:
        index = pv.add_callback(callback)
        if index is not None:
            pv.run_callback(index)
    if auto_monitor and not pv.auto_monitor:
        pv.auto_monitor = auto_monitor


def clear_pvcache() -> None:
    """Disconnect and forget every PV ``get_pv`` made (``caget`` and friends use them)."""
    with _cache_lock:
        pvs = list(_cache.values())
        _cache.clear()
    for pv in pvs:
        pv.disconnect()


on_forget(_cache.clear)


__all__ = ["PV", "clear_pvcache", "default_pv_class", "fmt_time", "get_pv"]
