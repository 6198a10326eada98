"""``epics.ca``'s channel table: one :class:`Chid` per name, its connection and access state,
and what the channel is (type, element count, host) (integration layer over Context).

Settings that scripts (and pyepics' tests) assign on ``epics.ca`` at run time, as
``DEFAULT_CONNECTION_TIMEOUT``, are looked up there on every use (:func:`setting`).
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from ...context import Context
from .. import dbr
from ..contexts import CONTEXT, write
from ..exceptions import ChannelAccessException
from ..fields import dbr_native
from ..session import default_session, on_forget

log = logging.getLogger("pvflow.epics")

_ids = itertools.count(1)
_channels: dict[str, Chid] = {}
_by_id: dict[int, Chid] = {}
_lock = threading.Lock()
_clear_cache_hooks: list[Callable[[], None]] = []


def setting(name: str) -> Any:
    """The current value of the ``epics.ca`` setting ``name``."""
    return getattr(sys.modules[__package__], name)


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
        self._ready = False  # connected and announced to the connection callbacks
        self._announcing: int | None = None  # the thread running the connection callbacks

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
        """As in pyepics, ``connected`` (and ``isConnected``) is True inside the connection
        callbacks; a call that waits for the channel (``get``, ``put``, ``connect_channel``)
        returns once they ran, except on the thread running them."""
        if connected == self.connected:
            return  # the watch starts with the current state; callbacks want changes
        with self._condition:
            self.connected = connected
            self.ever_connected |= connected
            self._ready = False
        self._announcing = threading.get_ident()
        try:
            for callback in list(self.callbacks):
                try:
                    callback(pvname=self.pvname, chid=self, conn=connected)
                except Exception:
                    log.exception("%s: connection callback %r failed", self.pvname, callback)
        finally:
            self._announcing = None
        with self._condition:
            self._ready = self.connected
            self._condition.notify_all()

    @property
    def ready(self) -> bool:
        """Connected, and its connection callbacks ran (or are running on this thread)."""
        return self._ready or (self.connected and self._announcing == threading.get_ident())

    def _on_access(self, read: bool, write: bool) -> None:
        self.read_access, self.write_access = read, write
        for callback in list(self.access_callbacks):
            try:
                callback(read, write)
            except Exception:
                log.exception("%s: access callback %r failed", self.pvname, callback)

    def wait(self, timeout: float) -> bool:
        if self.ready:
            return True
        with self._condition:
            return self._condition.wait_for(lambda: self._ready, timeout)


def chid_of(chid: Any) -> Chid:
    """The :class:`Chid` of a chid or of its integer value, as libca takes either."""
    if isinstance(chid, Chid):
        return chid
    found = _by_id.get(getattr(chid, "value", chid))  # type: ignore[arg-type]
    if found is None:
        raise ChannelAccessException(f"{chid!r}: not a valid chid!")
    return found


def context() -> Context:
    """The session's Context (``use_context`` replaces it)."""
    return default_session().context


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
    seconds = setting("DEFAULT_CONNECTION_TIMEOUT") if timeout is None else timeout
    return chid_of(chid).wait(seconds)


def clear_channel(chid: Any) -> int:
    """Forget the channel handle (PV objects on the same name keep their channel)."""
    found = chid_of(chid)
    found.close()
    with _lock:
        _channels.pop(found.pvname, None)
        _by_id.pop(found.value, None)
    return dbr.ECA_NORMAL


def replace_access_rights_event(chid: Any, callback: Callable[..., None] | None = None) -> None:
    if callback is not None:
        chid_of(chid).access_callbacks.append(callback)


def name(chid: Any) -> str:
    return chid_of(chid).pvname


def native_of(chid: Chid) -> tuple[str, int]:
    info = context().info(chid.pvname, timeout=setting("DEFAULT_CONNECTION_TIMEOUT"))
    return dbr_native(info.native_type, info.element_count)


def host_name(chid: Any) -> str:
    """``host:port`` of the server, or pyepics' text for an unconnected channel."""
    found = chid_of(chid)
    if not found.connected:
        return "<disconnected>"
    return context().info(found.pvname).address or "<disconnected>"


def element_count(chid: Any) -> int:
    found = chid_of(chid)
    return native_of(found)[1] if found.connected else 0


def field_type(chid: Any) -> int:
    found = chid_of(chid)
    if not found.connected:
        return dbr.TYPENOTCONN
    return dbr.CODES.get(native_of(found)[0], dbr.TYPENOTCONN)


def read_access(chid: Any) -> int:
    return int(chid_of(chid).read_access)


def write_access(chid: Any) -> int:
    return int(chid_of(chid).write_access)


def access(chid: Any) -> str:
    found = chid_of(chid)
    return ("no access", "read-only", "write-only", "read/write")[
        int(found.read_access) + 2 * int(found.write_access)]


def state(chid: Any) -> int:
    found = chid_of(chid)
    if found.connected:
        return dbr.CS_CONN
    return dbr.CS_PREV_CONN if found.ever_connected else dbr.CS_NEVER_CONN


def isConnected(chid: Any) -> bool:  # noqa: N802  (pyepics' name)
    return chid_of(chid).connected


def promote_type(chid: Any, use_time: bool = False, use_ctrl: bool = False) -> int:
    return dbr.promote_fieldtype(field_type(chid), use_time=use_time, use_ctrl=use_ctrl)



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
