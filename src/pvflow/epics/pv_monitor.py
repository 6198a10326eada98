"""`MonitorState`: a PV's subscription and its value callbacks (integration layer, part of
:class:`pvflow.epics.pv.PV`).

Updates arrive in order per PV on pvflow's callback workers; they and ophyd's "run now"
deliveries share one :class:`SerialRunner`, so a callback never sees an older value after a
newer one. ``monitor_delta`` is applied here, in the client: pyepics first tries to write
the record's MDEL, which changes the IOC for every other client.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..reading import Reading
from . import dbr
from .fields import is_array, put_time_fields
from .flag import Flag
from .serial import SerialRunner
from .session import Host

log = logging.getLogger("pvflow.epics")

# Subscribing and unsubscribing are rare next to updates: one lock for every PV spares each
# of thousands of PVs a lock of its own.
_subscription_lock = threading.Lock()


class MonitorState:
    """Mixed into :class:`pvflow.epics.pv.PV`."""

    session: Host
    pvname: str
    connected: bool
    callbacks: dict[int, tuple[Callable[..., None], dict[str, Any]]]
    access_callbacks: list[Callable[..., None]]
    connection_callbacks: list[Callable[..., None]]
    metadata_event: Flag
    _args: dict[str, Any]
    _auto_monitor: Any
    _closed: bool
    _connection_from_monitor: bool
    _has_monitor_value: bool
    _monitor_value_event: Flag
    _monitor_last_value: Any
    _serial: SerialRunner
    _subscription: Any
    _user_count: int | None

    if TYPE_CHECKING:
        def _on_connection(self, connected: bool) -> None: ...
        def watch_access(self) -> None: ...
        def get(self, **kwargs: Any) -> Any: ...
        def get_ctrlvars(self, timeout: float = 5.0, warn: bool = True) -> Any: ...
        def _char_value(self, value: Any, long_string: bool = False,
                        fetch: bool = True) -> Any: ...

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
        with _subscription_lock:
            if self._subscription is None and not self._closed:
                self._monitor_value_event.clear()
                self._subscription = self.session.context.subscribe(
                    self.pvname, self._on_update, mask=self._mask(),
                    connection_callback=self._on_connection
                    if self._connection_from_monitor else None)

    def _unsubscribe(self) -> None:
        with _subscription_lock:
            subscription, self._subscription = self._subscription, None
            self._has_monitor_value = False
        self._monitor_value_event.set()  # wakes a wait for a first value that will not come
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
        array = is_array(value)
        if array and self._user_count and len(value) > self._user_count:
            value = value[:self._user_count]
        fields = self._args
        if fields["monitor_delta"] is not None and self._below_monitor_delta(value):
            return
        put_time_fields(fields, reading)
        fields["value"] = value
        fields["count"] = len(value) if array else 1
        # char_value is text formatting: done for the callbacks that receive it, otherwise
        # left for the char_value property to compute when asked.
        fields["char_value"] = self._char_value(value, fetch=False) if self.callbacks else None
        if not self._has_monitor_value:
            self._has_monitor_value = True
            self._monitor_value_event.set()
        for index in sorted(self.callbacks):
            self._call(index, {})

    def _below_monitor_delta(self, value: Any) -> bool:
        if is_array(value):
            return False
        last, self._monitor_last_value = self._monitor_last_value, value
        try:
            if abs(value - last) < self._args["monitor_delta"]:
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
