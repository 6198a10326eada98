"""pyepics' low-level ``epics.ca`` functions on pvflow channels (integration layer over
Context).

A ``chid`` here is a :class:`Chid` handle on one name of the session's Context (one per name,
as libca keeps one channel per name and context). The functions keep pyepics' signatures and
return values: ``get`` gives None for a channel that does not connect, ``put`` 1 on success
and -1 when its wait timed out, ``create_subscription`` a ``(callback, user_arg, event_id)``
triple.

Left out, because pvflow has nothing they could act on: the synchronous groups (``sg_*``:
``Context.get_many`` does their job in one round trip), ``libca``/``find_libca`` and the printf
handlers (there is no C library), ``client_status``. Contexts (``create_context``,
``attach_context`` ...) are accepted and do nothing: pvflow's one Context per process is safe
to use from every thread. A read with ``ftype`` asks for the form (native, TIME, CTRL) that
``ftype`` names and, for ``DBR_STRING`` on a non-string channel, the value as text; other
type conversions on the server are not requested.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import PVFlowError, PVTimeoutError
from ..reading import Reading
from . import dbr
from .contexts import (  # noqa: F401  (pyepics' epics.ca names)
    CONTEXT,
    attach_context,
    CAThread,
    context_create,
    context_destroy,
    create_context,
    current_context,
    destroy_context,
    detach_context,
    finalize_libca,
    flush_io,
    initialize_libca,
    message,
    pend_event,
    pend_io,
    poll,
    test_io,
    use_initial_context,
    version,
    withCA,
    withCHID,
    withConnectedCHID,
    withInitialContext,
    withMaybeConnectedCHID,
    withSEVCHK,
    write,
)
from .exceptions import CASeverityException, ChannelAccessException, ChannelAccessGetFailure
from .fields import char_value, dbr_native, is_array, read_metadata
from .session import default_session, on_forget
from .values import wire_value

__all__ = [
    "CASeverityException", "CAThread", "ChannelAccessException", "ChannelAccessGetFailure",
    "Chid", "access", "clear_cache", "clear_channel", "clear_subscription", "connect_channel",
    "create_channel", "create_subscription", "element_count", "field_type", "get",
    "get_complete", "get_ctrlvars", "get_timevars", "host_name", "isConnected", "name",
    "pend_event", "pend_io", "poll", "promote_type", "put", "read_access", "state",
    "write_access",
]

log = logging.getLogger("pvflow.epics")

HAS_NUMPY = True
PREEMPTIVE_CALLBACK = True
AUTO_CLEANUP = True
WITH_CA_MESSAGES = False
AUTOMONITOR_MAXLENGTH = 65536
DEFAULT_CONNECTION_TIMEOUT = 2.0
DEFAULT_SUBSCRIPTION_MASK = dbr.DBE_VALUE | dbr.DBE_ALARM


_ids = itertools.count(1)
_channels: dict[str, Chid] = {}
_by_id: dict[int, Chid] = {}
_lock = threading.Lock()
_clear_cache_hooks: list[Callable[[], None]] = []
_readers: ThreadPoolExecutor | None = None


class Chid:
    """A channel id: one name of the session's Context, with the connection and access
    callbacks pyepics keeps per channel. ``value`` is a small integer, as libca's pointer."""

    def __init__(self, pvname: str):
        self.pvname = pvname
        self.value = next(_ids)
        self.connected = False
        self.ever_connected = False
        self.read_access = False
        self.write_access = False
        self.callbacks: list[Callable[..., None]] = []
        self.access_callbacks: list[Callable[..., None]] = []
        self.pending: dict[int, Future[Any]] = {}
        self._watch: Any = None
        self._condition = threading.Condition()

    def __repr__(self) -> str:
        return f"<chid {self.value} {self.pvname!r}>"

    def __int__(self) -> int:
        return self.value

    __index__ = __int__

    def start(self) -> None:
        self._watch = default_session().context.watch(self.pvname, self._on_connection,
                                                      access_callback=self._on_access)

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    def _on_connection(self, connected: bool) -> None:
        if connected == self.connected:
            return  # the watch starts with the current state; callbacks want changes
        with self._condition:
            self.connected = connected
            self.ever_connected |= connected
            self._condition.notify_all()
        for callback in list(self.callbacks):
            try:
                callback(pvname=self.pvname, chid=self, conn=connected)
            except Exception:
                log.exception("%s: connection callback %r failed", self.pvname, callback)

    def _on_access(self, read: bool, write: bool) -> None:
        self.read_access, self.write_access = read, write
        for callback in list(self.access_callbacks):
            try:
                callback(read, write)
            except Exception:
                log.exception("%s: access callback %r failed", self.pvname, callback)

    def wait(self, timeout: float) -> bool:
        with self._condition:
            return self._condition.wait_for(lambda: self.connected, timeout)


def _chid(chid: Any) -> Chid:
    if isinstance(chid, Chid):
        return chid
    found = _by_id.get(getattr(chid, "value", chid))  # type: ignore[arg-type]
    if found is None:
        raise ChannelAccessException(f"{chid!r}: not a valid chid!")
    return found


def _context() -> Any:
    return default_session().context


# --- channels -------------------------------------------------------------------------------------
def create_channel(pvname: str, connect: bool = False, auto_cb: bool = True,
                   callback: Callable[..., None] | None = None) -> Chid:
    """The channel of ``pvname`` (one per name); ``callback(pvname=, chid=, conn=)`` runs on
    every connection change, at once when it is connected already."""
    with _lock:
        chid = _channels.get(pvname)
        created = chid is None
        if created:
            chid = _channels[pvname] = Chid(pvname)
            _by_id[chid.value] = chid
    assert chid is not None
    if callable(callback):
        chid.callbacks.append(callback)
        if chid.connected:
            callback(pvname=pvname, chid=chid, conn=True)
    if created:
        chid.start()
    if connect:
        connect_channel(chid)
    return chid


def connect_channel(chid: Any, timeout: float | None = None, verbose: bool = False) -> bool:
    """Wait up to ``timeout`` (default 2 s) for the channel; its connection state."""
    return _chid(chid).wait(DEFAULT_CONNECTION_TIMEOUT if timeout is None else timeout)


def clear_channel(chid: Any) -> int:
    """Forget the channel handle (PV objects on the same name keep their channel)."""
    found = _chid(chid)
    found.close()
    with _lock:
        _channels.pop(found.pvname, None)
        _by_id.pop(found.value, None)
    return dbr.ECA_NORMAL


def replace_access_rights_event(chid: Any, callback: Callable[..., None] | None = None) -> None:
    if callback is not None:
        _chid(chid).access_callbacks.append(callback)


def name(chid: Any) -> str:
    return _chid(chid).pvname


def _native(chid: Chid) -> tuple[str, int]:
    info = _context().info(chid.pvname, timeout=DEFAULT_CONNECTION_TIMEOUT)
    return dbr_native(info.native_type, info.element_count)


def host_name(chid: Any) -> str:
    """``host:port`` of the server, or pyepics' text for an unconnected channel."""
    found = _chid(chid)
    if not found.connected:
        return "<disconnected>"
    return _context().info(found.pvname).address or "<disconnected>"


def element_count(chid: Any) -> int:
    found = _chid(chid)
    return _native(found)[1] if found.connected else 0


def field_type(chid: Any) -> int:
    found = _chid(chid)
    if not found.connected:
        return dbr.TYPENOTCONN
    return dbr.CODES.get(_native(found)[0], dbr.TYPENOTCONN)


def read_access(chid: Any) -> int:
    return int(_chid(chid).read_access)


def write_access(chid: Any) -> int:
    return int(_chid(chid).write_access)


def access(chid: Any) -> str:
    found = _chid(chid)
    return ("no access", "read-only", "write-only", "read/write")[
        int(found.read_access) + 2 * int(found.write_access)]


def state(chid: Any) -> int:
    found = _chid(chid)
    if found.connected:
        return dbr.CS_CONN
    return dbr.CS_PREV_CONN if found.ever_connected else dbr.CS_NEVER_CONN


def isConnected(chid: Any) -> bool:  # noqa: N802  (pyepics' name)
    return _chid(chid).connected


def promote_type(chid: Any, use_time: bool = False, use_ctrl: bool = False) -> int:
    return dbr.promote_fieldtype(field_type(chid), use_time=use_time, use_ctrl=use_ctrl)


promote_fieldtype = dbr.promote_fieldtype


# --- reads ----------------------------------------------------------------------------------------
def _unpacked(value: Any, native_type: str, count: int | None, as_numpy: bool) -> Any:
    """pyepics' ``_unpack``: one element as a scalar, numeric arrays as numpy (or lists),
    string arrays as lists."""
    if not is_array(value):
        return value
    if count == 1 and len(value) >= 1:
        return value[0].item() if isinstance(value, np.ndarray) else value[0]
    if native_type == "STRING" or not (as_numpy and HAS_NUMPY):
        return value.tolist() if isinstance(value, np.ndarray) else list(value)
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def _as_string(value: Any, chid: Chid, native_type: str, count: int, ftype: int) -> str:
    """pyepics' ``_as_string``: char waveforms as text, enums as their label, other arrays
    as ``<array count=N, type=T>``."""
    if native_type == "CHAR" and count < AUTOMONITOR_MAXLENGTH:
        return char_value(value, "CHAR", count, None, None)
    if native_type == "ENUM" and count == 1 and not isinstance(value, str):
        labels = get_enum_strings(chid) or ()
        return labels[value] if 0 <= value < len(labels) else str(value)
    if count > 1 and is_array(value):
        return f"<array count={count}, type={ftype}>"
    return str(value)


def _read(chid: Chid, ftype: int, count: int | None, timeout: float | None,
          as_string: bool, as_numpy: bool) -> dict[str, Any] | None:
    native_type, elements = _native(chid)
    form = dbr.form_of(ftype)
    text = dbr.native_type(ftype) == dbr.STRING and native_type != "STRING"
    wanted = None if not count else min(count, elements)
    try:
        reading = _context().get(chid.pvname, form=form, count=wanted, as_string=text,
                                 timeout=timeout if timeout is not None else
                                 1.0 + np.log10(max(1, wanted or elements)))
    except PVTimeoutError:
        log.warning("ca.get('%s') timed out", chid.pvname)
        return None
    except PVFlowError as error:
        raise ChannelAccessGetFailure(f"{chid.pvname}: get failed: {error}", chid=chid,
                                      status=dbr.ECA_BADCHID) from error
    value = reading.value if isinstance(reading, Reading) else reading
    found = read_metadata(reading, form)
    value = _unpacked(value, native_type, wanted, as_numpy)
    if as_string:
        value = _as_string(value, chid, native_type, wanted or elements, ftype)
    found["value"] = value
    return found


def _reader_pool() -> ThreadPoolExecutor:
    global _readers
    with _lock:
        if _readers is None:
            _readers = ThreadPoolExecutor(4, thread_name_prefix="pvflow-epics-get")
    return _readers


def get_with_metadata(chid: Any, ftype: int | None = None, count: int | None = None,
                      wait: bool = True, timeout: float | None = None, as_string: bool = False,
                      as_numpy: bool = True) -> dict[str, Any] | None:
    """The value with the metadata of ``ftype``'s form; None when not connected in time or
    (with ``wait=False``) until ``get_complete`` collects it."""
    found = _chid(chid)
    if not found.connected and not connect_channel(found, timeout):
        return None
    code = field_type(found) if ftype is None else ftype
    if code < 0:
        return None
    if not wait:
        found.pending[code] = _reader_pool().submit(_read, found, code, count, timeout,
                                                    as_string, as_numpy)
        return None
    return _read(found, code, count, timeout, as_string, as_numpy)


def get(chid: Any, ftype: int | None = None, count: int | None = None, wait: bool = True,
        timeout: float | None = None, as_string: bool = False, as_numpy: bool = True) -> Any:
    found = get_with_metadata(chid, ftype=ftype, count=count, wait=wait, timeout=timeout,
                              as_string=as_string, as_numpy=as_numpy)
    return None if found is None else found["value"]


def get_complete_with_metadata(chid: Any, ftype: int | None = None, count: int | None = None,
                               timeout: float | None = None, as_string: bool = False,
                               as_numpy: bool = True) -> dict[str, Any] | None:
    """The result of an earlier ``get(..., wait=False)``."""
    found = _chid(chid)
    code = field_type(found) if ftype is None else ftype
    pending = found.pending.pop(code, None)
    if pending is None:
        log.warning("%s: get_complete without initial get() call", found.pvname)
        return None
    result = pending.result()
    if result is not None and as_string and not isinstance(result["value"], str):
        native_type, elements = _native(found)
        result["value"] = _as_string(result["value"], found, native_type, elements, code)
    return result


def get_complete(chid: Any, ftype: int | None = None, count: int | None = None,
                 timeout: float | None = None, as_string: bool = False,
                 as_numpy: bool = True) -> Any:
    found = get_complete_with_metadata(chid, ftype=ftype, count=count, timeout=timeout,
                                       as_string=as_string, as_numpy=as_numpy)
    return None if found is None else found["value"]


def get_ctrlvars(chid: Any, timeout: float = 5.0, warn: bool = True) -> dict[str, Any] | None:
    """The CTRL fields: status, severity and, by type, units, precision, limits, enum_strs."""
    return _metadata_only(chid, promote_type(chid, use_ctrl=True), timeout)


def get_timevars(chid: Any, timeout: float = 5.0, warn: bool = True) -> dict[str, Any] | None:
    """The TIME fields: status, severity, timestamp."""
    return _metadata_only(chid, promote_type(chid, use_time=True), timeout)


def _metadata_only(chid: Any, ftype: int, timeout: float) -> dict[str, Any] | None:
    found = get_with_metadata(chid, ftype=ftype, count=1, timeout=timeout)
    if found is not None:
        found.pop("value", None)
    return found


def get_timestamp(chid: Any) -> float:
    return (get_timevars(chid) or {}).get("timestamp", 0)


def get_severity(chid: Any) -> int:
    return (get_timevars(chid) or {}).get("severity", 0)


def get_precision(chid: Any) -> int | None:
    if field_type(chid) in (dbr.FLOAT, dbr.DOUBLE):
        return (get_ctrlvars(chid) or {}).get("precision")
    return None


def get_enum_strings(chid: Any) -> tuple[str, ...] | None:
    if field_type(chid) == dbr.ENUM:
        return (get_ctrlvars(chid) or {}).get("enum_strs")
    return None


# --- writes ---------------------------------------------------------------------------------------
def put(chid: Any, value: Any, wait: bool = False, timeout: float = 30,
        callback: Callable[..., None] | None = None, callback_data: Any = None,
        ftype: int | None = None) -> int:
    """Write ``value``: 1 once sent (or confirmed, with ``wait``), -1 when the wait timed out.
    ``callback(pvname=..., data=callback_data)`` runs when the server confirms (a dict
    ``callback_data`` is passed as keywords)."""
    found = _chid(chid)
    if not found.connected and not connect_channel(found, timeout):
        raise ChannelAccessException(f"put() timed out waiting '{found.pvname}' to connect "
                                     f"({timeout} seconds)")
    native_type, elements = _native(found)
    try:
        value = wire_value(value, native_type, elements)
    except ValueError as error:
        raise ChannelAccessException(f"{found.pvname}: cannot put {value!r}: {error}") \
            from error
    keywords = callback_data if isinstance(callback_data, dict) else {"data": callback_data}
    context = _context()
    try:
        if not (wait or callable(callback)):
            context.put(found.pvname, value, wait=False, timeout=timeout)
            return dbr.ECA_NORMAL
        if not wait and callback is not None:
            confirm = callback  # (named for the closure)
            context.put(found.pvname, value, timeout=timeout,
                        callback=lambda error: confirm(pvname=found.pvname, **keywords))
            return dbr.ECA_NORMAL
        context.put(found.pvname, value, wait=True, timeout=timeout)
    except PVTimeoutError:
        return -dbr.ECA_NORMAL
    except (ValueError, TypeError) as error:
        raise ChannelAccessException(f"{found.pvname}: cannot put {value!r}: {error}") \
            from error
    if callable(callback):
        callback(pvname=found.pvname, **keywords)
    return dbr.ECA_NORMAL


# --- subscriptions --------------------------------------------------------------------------------
def create_subscription(chid: Any, use_time: bool = False, use_ctrl: bool = False,
                        ftype: int | None = None, mask: int | None = None,
                        callback: Callable[..., None] | None = None, count: int = 0,
                        timeout: float | None = None) -> tuple[Any, None, Any]:
    """``callback(value=, pvname=, chid=, ftype=, count=, **metadata)`` on every change; the
    third item of the result is what ``clear_subscription`` takes."""
    found = _chid(chid)
    if ftype is None:
        seconds = DEFAULT_CONNECTION_TIMEOUT if timeout is None else timeout
        if not found.connected and not connect_channel(found, seconds):
            raise ChannelAccessException(f"create_subscription() timed out waiting "
                                         f"'{found.pvname}' to connect ({seconds} seconds)")
        ftype = field_type(found)
    code = dbr.promote_fieldtype(ftype, use_time=use_time, use_ctrl=use_ctrl)
    form = dbr.form_of(code)
    native_type = _native(found)[0] if found.connected else dbr.Name(dbr.native_type(code))

    def deliver(update: Any) -> None:
        value = update.value if isinstance(update, Reading) else update
        if count and is_array(value):
            value = value[:count]
        size = len(value) if is_array(value) else 1
        keywords = read_metadata(update, form) if isinstance(update, Reading) else {}
        if callable(callback):
            callback(value=_unpacked(value, str(native_type), size, True), ftype=code,
                     count=size, chid=found, pvname=found.pvname, **keywords)

    event_id = _context().subscribe(found.pvname, deliver,
                                    form="value" if form == "value" else form,
                                    mask=mask or DEFAULT_SUBSCRIPTION_MASK)
    return (callback, None, event_id)


def clear_subscription(event_id: Any) -> int:
    event_id.close()
    return dbr.ECA_NORMAL


# --- caches ---------------------------------------------------------------------------------------
def register_clear_cache(callback: Callable[[], None]) -> None:
    _clear_cache_hooks.append(callback)


def clear_cache() -> None:
    """Forget every channel handle and every cached PV (``caget`` and ``get_pv`` start
    afresh); the Context's channels stay connected for other users."""
    with _lock:
        chids = list(_channels.values())
        _channels.clear()
        _by_id.clear()
    for chid in chids:
        chid.close()
    for hook in _clear_cache_hooks:
        hook()


def show_cache(print_out: bool = True) -> str | None:
    lines = ["#  PVName        ChannelID/Context Connected?", "#" + "-" * 50]
    lines.extend(f" {chid.pvname:20s} {chid.value} {CONTEXT} {chid.connected}"
                 for chid in list(_channels.values()))
    text = "\n".join(lines)
    if print_out:
        write(text)
        return None
    return text


def _forget_channels() -> None:
    with _lock:
        _channels.clear()
        _by_id.clear()


on_forget(_forget_channels)
