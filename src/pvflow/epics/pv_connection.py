"""`ConnectionState`: a PV's connection and access rights, and the channel's native type
(integration layer, part of :class:`pvflow.epics.pv.PV`).

Connection and access changes arrive in wire order on pvflow's callback workers, from the
PV's subscription (most PVs: one mailbox per PV) or from a watch. As in pyepics the
connection callbacks run before ``connected`` turns True, so a callback that reads the PV
sees it still connecting.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import PVFlowError
from . import dbr
from .fields import LONG_STRING_LENGTH, dbr_native
from .flag import Flag
from .session import Host

log = logging.getLogger("pvflow.epics")

ACCESS_TEXT = ("no access", "read-only", "write-only", "read/write")


@functools.lru_cache(maxsize=256)
def channel_description(type_name: str, element_count: int, form: str
                        ) -> tuple[tuple[str, int], int | None, str]:
    """``((DBR type name, element count), ftype, type text)`` of a channel as pyepics shows
    it for a PV of ``form``: the same few answers for thousands of PVs, so computed once."""
    native_type, count = dbr_native(type_name, element_count)
    code = dbr.CODES.get(native_type)
    if code is None:
        return (native_type, count), None, native_type.lower()
    ftype = dbr.promote_fieldtype(code, use_time=form == "time", use_ctrl=form == "ctrl")
    return (native_type, count), ftype, str(dbr.Name(ftype)).lower()


class ConnectionState:
    """Mixed into :class:`pvflow.epics.pv.PV`."""

    session: Host
    pvname: str
    form: str
    ftype: int | None
    connected: bool
    connection_timeout: float
    connection_callbacks: list[Callable[..., None]]
    access_callbacks: list[Callable[..., None]]
    metadata_event: Flag
    metadata_requested: bool
    _args: dict[str, Any]
    _auto_monitor: Any
    _closed: bool
    _connected_event: Flag
    _native: tuple[str, int] | None
    _subscription: Any
    _user_count: int | None
    _watch: Any

    auto_monitor: Any

    if TYPE_CHECKING:
        def _open(self) -> None: ...
        def _first_monitor_value(self, timeout: float | None) -> bool: ...

    def watch_access(self) -> None:
        """Follow access-rights changes (and connection changes) through a watch."""
        if self._watch is None and not self._closed:
            self._watch = self.session.context.watch(self.pvname, self._on_connection,
                                                     access_callback=self._on_access)

    def _on_connection(self, connected: bool) -> None:
        """Connection changes (pvflow worker), in wire order."""
        if self._closed or connected == self.connected:
            return  # a watch starts with the current state; only changes are reported
        if connected:
            if self._auto_monitor is None or not self.pvname.startswith("pva://"):
                try:  # a CA channel knows this locally; pvAccess asks the server: if needed
                    self.native()
                except PVFlowError as error:  # lost again while asking: the next event follows
                    log.debug("%s: channel type unknown: %s", self.pvname, error)
        else:
            self._lost()
        for callback in list(self.connection_callbacks):
            try:
                callback(pvname=self.pvname, conn=connected, pv=self)
            except Exception:
                log.exception("%s: connection callback %r failed", self.pvname, callback)
        if connected:
            self.connected = True
            self._connected_event.set()
            if self._auto_monitor is None and self._native is not None:
                self._decide_monitor(self._native[1] < LONG_STRING_LENGTH)

    def _lost(self) -> None:
        self.connected = False
        self._connected_event.clear()
        self._native = None
        self.metadata_event.clear()
        self.metadata_requested = False

    def _decide_monitor(self, monitor: bool) -> None:
        """pyepics' ``auto_monitor=None``: monitor unless the array is long. The
        subscription went out with the connection; only a long array changes anything."""
        if monitor and self._subscription is not None:
            self._auto_monitor = True
        else:
            self.auto_monitor = monitor

    def _on_access(self, read: bool, write: bool) -> None:
        if self._closed:
            return
        self._args.update(read_access=read, write_access=write,
                          access=ACCESS_TEXT[int(read) + 2 * int(write)])
        for callback in list(self.access_callbacks):
            try:
                callback(read, write, pv=self)
            except Exception:
                log.exception("%s: access callback %r failed", self.pvname, callback)

    def wait_for_connection(self, timeout: float | None = None) -> bool:
        """True once connected; False when ``timeout`` (default: the connection timeout)
        passed or the PV was disconnected.

        A monitored PV is ready when its monitor's first value is in, too: that value left
        the server right after the connection, one round trip later, so a ``get`` or
        ``value`` after this call answers without waiting (and a script that waits for
        all its PVs first waits for all their first values at once)."""
        if self._closed:
            return False
        seconds = self.connection_timeout if timeout is None else timeout
        if not self._connected_event.wait(seconds):
            return False
        self._first_monitor_value(seconds)
        return True

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
            found, self.ftype, full = channel_description(info.native_type,
                                                          info.element_count, self.form)
            self._native = found
            self._args.update(nelm=found[1], type=full, typefull=full, ftype=self.ftype,
                              host=info.address,
                              read_access=info.read_access, write_access=info.write_access,
                              access=ACCESS_TEXT[int(info.read_access)
                                                 + 2 * int(info.write_access)],
                              count=min(found[1], self._user_count or found[1]))
        return found

    def force_read_access_rights(self) -> None:
        """Access rights are pushed by the server and always current: nothing to read."""

    def poll(self, evt: float = 1.e-4, iot: float = 1.0) -> None:
        """Callbacks arrive by themselves; this only yields, as pyepics' poll does."""
        time.sleep(evt)
