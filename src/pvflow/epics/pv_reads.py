"""`Reads`: a PV's ``get`` family, its CTRL and TIME metadata and ``info`` (integration layer,
part of :class:`pvflow.epics.pv.PV`).

A monitored PV answers ``get`` from its monitor: the subscription went out with the
connection, so a get that comes before the first update waits for it rather than sending a
read of its own (the update is due as soon as a read's answer would be).
"""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..context import DEFAULT
from ..errors import DisconnectedError, PVFlowError, PVTimeoutError
from ..reading import Reading
from . import dbr
from .exceptions import ChannelAccessGetFailure
from .fields import CONTROL_KEYS, char_value, control_fields, is_array, put_time_fields, \
    read_metadata, time_fields
from .flag import Flag
from .info import describe
from .session import Host

log = logging.getLogger("pvflow.epics")

FIRST_VALUE_WAIT = 1.0  # seconds a get waits for a new monitor's first value, then reads
_TIME_KEYS = ("status", "severity", "timestamp", "posixseconds", "nanoseconds")


class Reads:
    """Mixed into :class:`pvflow.epics.pv.PV`."""

    session: Host
    pvname: str
    form: str
    connected: bool
    metadata_event: Flag
    _args: dict[str, Any]
    _auto_monitor: Any
    _chid: Any
    _has_monitor_value: bool
    _monitor_value_event: Flag
    _subscription: Any
    _user_count: int | None

    if TYPE_CHECKING:
        def native(self) -> tuple[str, int]: ...
        def wait_for_connection(self, timeout: float | None = None) -> bool: ...

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
            found = self._read_with_metadata(form, count, timeout, with_ctrlvars)
            if found is None:
                return None
            metadata, value = found
        metadata["value"] = self._shaped(value, count, as_string, as_numpy)
        return SimpleNamespace(**metadata) if as_namespace else metadata

    def _read_with_metadata(self, form: str, count: int | None, timeout: float | None,
                            with_ctrlvars: bool) -> tuple[dict[str, Any], Any] | None:
        """(metadata, value) of a read from the server, remembered on the PV."""
        if count is None and self._user_count:
            count = self._args["count"]
        reading = self._read(form, count, timeout)
        if reading is None:
            return None
        metadata = read_metadata(reading, form)
        self._args.update(metadata)
        if form == "ctrl":
            self.metadata_event.set()
        if with_ctrlvars and form != "ctrl":
            metadata = dict(self._args)
        return metadata, reading.value if form != "native" else reading

    def _first_monitor_value(self, timeout: float | None) -> bool:
        """Whether the monitor has a value, waiting for its first one if it is on its way
        (a server sends none while it denies reading)."""
        if self._has_monitor_value:
            return True
        if self._subscription is None or self._args["read_access"] is False:
            return False
        self._monitor_value_event.wait(FIRST_VALUE_WAIT if timeout is None
                                       else min(timeout, FIRST_VALUE_WAIT))
        return self._has_monitor_value

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

    # --- metadata -------------------------------------------------------------------------------
    def apply_control(self, reading: Reading) -> dict[str, Any]:
        """Keep a CTRL reading's metadata (and its alarm state and timestamp when no monitor
        runs); returns the pyepics-style metadata dict."""
        fields = control_fields(reading)
        if not self._has_monitor_value:
            put_time_fields(fields, reading)
        self._args.update(fields)
        return fields

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
        return describe(self)  # type: ignore[arg-type]
