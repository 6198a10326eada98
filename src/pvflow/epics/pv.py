"""`PV` and `get_pv`: pyepics' process-variable object over a pvflow Context (integration
layer: imports pvflow's public API, never sockets or pvflow.ca).

Same constructor, methods, properties, callback keywords and return values as ``epics.PV``
(pyepics 3.5), with these differences:

- Monitor callbacks run on pvflow's callback workers, in order per PV, instead of libca's
  thread: a slow callback on one PV never delays another PV.
- ``put(callback=...)`` returns at once; the callback runs exactly once, when the server
  confirms the write.
- ``monitor_delta`` is applied in the client, never written to the record's MDEL.
- ``ca://`` and ``pva://`` names work alike.

The class is assembled from one part per concern: :mod:`.pv_connection` (connection, access
rights, native type), :mod:`.pv_monitor` (subscription and value callbacks),
:mod:`.pv_reads` (``get`` and metadata), :mod:`.pv_writes` (``put``) and
:mod:`.pv_fields` (the attribute properties). pvflow's ophyd control layer subclasses it, as
ophyd's pyepics shim subclasses ``epics.PV``, to route callbacks through ophyd's dispatcher.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .contexts import CONTEXT
from .fields import FIELDS
from .flag import Flag
from .info import fmt_time
from .pv_connection import ConnectionState
from .pv_fields import FieldProperties
from .pv_monitor import MonitorState
from .pv_reads import Reads
from .pv_writes import Writes
from .serial import SerialRunner
from .session import Host, default_session, on_forget

log = logging.getLogger("pvflow.epics")

DEFAULT_CONNECTION_TIMEOUT = 2.0  # pyepics' ca.DEFAULT_CONNECTION_TIMEOUT


class PV(ConnectionState, MonitorState, Reads, Writes, FieldProperties):
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
        self._args = _unknown_fields(self.pvname, count, monitor_delta)
        self.connection_callbacks = [self._wrap("metadata", connection_callback)] \
            if connection_callback is not None else []
        self.access_callbacks = [self._wrap("metadata", access_callback)] \
            if access_callback is not None else []
        self.callbacks = _callback_table(callback)
        flags = self.session.flags
        self._connected_event = Flag(flags)
        self.metadata_event = Flag(flags)  # the first CTRL metadata of this connection
        self._monitor_value_event = Flag(flags)  # the first value arrived or the monitor stopped
        self.metadata_requested = False  # guarded by ophyd's metadata prefetcher
        self._serial = SerialRunner(self.pvname)
        self._subscription: Any = None
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

    def __repr__(self) -> str:
        if not self.connected:
            return f"<PV '{self.pvname}': not connected>"
        return (self._fmtsca if self.count == 1 else self._fmtarr) % self._args

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PV) and other.pvname == self.pvname and \
            other.session is self.session

    __hash__ = object.__hash__

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
        self._args = _unknown_fields(self.pvname, self._user_count, self._args["monitor_delta"])

    def _cache_key(self) -> tuple[str, str, int]:
        return (self.pvname, self.form, id(self.session))


_UNKNOWN: dict[str, Any] = {**dict.fromkeys(FIELDS), "nelm": -1, "type": "unknown",
                            "typefull": "unknown", "access": "unknown"}


def _unknown_fields(pvname: str, count: int | None, monitor_delta: float | None
                    ) -> dict[str, Any]:
    """pyepics' field dictionary of a PV that has not connected yet."""
    fields = _UNKNOWN.copy()
    fields["pvname"], fields["count"], fields["monitor_delta"] = pvname, count, monitor_delta
    return fields


def _callback_table(callback: Any) -> dict[int, tuple[Callable[..., None], dict[str, Any]]]:
    """``{index: (function, extra keywords)}`` from the constructor's ``callback``: one
    function or a list of them."""
    if callback is None:
        return {}
    functions = callback if isinstance(callback, (tuple, list)) else [callback]
    return {index: (function, {}) for index, function in enumerate(functions)
            if callable(function)}


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
