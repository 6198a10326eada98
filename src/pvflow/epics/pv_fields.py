"""`FieldProperties`: pyepics' PV attributes (``pv.units``, ``pv.severity``, ``pv.count`` ...)
as properties over the PV's field dictionary (integration layer, part of :mod:`.pv`).

Each reads its field through ``_getarg``, which fetches what is still unknown (pyepics'
behaviour; ophyd's PV answers from what it has).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import PVFlowError
from . import dbr


class FieldProperties:
    """Mixed into :class:`pvflow.epics.pv.PV`."""

    _args: dict[str, Any]
    _native: tuple[str, int] | None
    _put_complete: bool | None
    connected: bool

    if TYPE_CHECKING:
        def _getarg(self, arg: str) -> Any: ...
        def _char_value(self, value: Any, long_string: bool = False,
                        fetch: bool = True) -> Any: ...
        def native(self) -> tuple[str, int]: ...
        def put(self, value: Any, wait: bool = False, timeout: float | None = 30.0,
                use_complete: bool = False, callback: Any = None,
                callback_data: Any = None) -> int | None: ...

    @property
    def value(self) -> Any:
        return self._getarg("value")

    @value.setter
    def value(self, value: Any) -> None:
        self.put(value)

    @property
    def char_value(self) -> Any:
        return self._char_value(self._getarg("value"))

    @property
    def status(self) -> int | None:
        return self._getarg("status")

    @property
    def char_status(self) -> str:
        return dbr.AlarmStatus(self.status or 0).name

    @property
    def severity(self) -> int | None:
        return self._getarg("severity")

    @property
    def char_severity(self) -> str:
        return dbr.AlarmSeverity(self.severity or 0).name

    @property
    def type(self) -> str:
        return self._args["type"]

    @property
    def typefull(self) -> str:
        return self._args["typefull"]

    @property
    def host(self) -> str | None:
        return self._getarg("host")

    @property
    def count(self) -> int | None:
        """Elements a read returns (``NORD`` for a waveform); see also ``nelm``."""
        if self._args["count"] is not None:
            return self._args["count"]
        return self._getarg("count")

    @property
    def nelm(self) -> int:
        """The channel's element count (a waveform's ``NELM``)."""
        if self._native is None and self.connected:
            try:
                self.native()
            except PVFlowError:
                pass
        return self._args["nelm"]

    @property
    def read_access(self) -> bool | None:
        return self._getarg("read_access")

    @property
    def write_access(self) -> bool | None:
        return self._getarg("write_access")

    @property
    def access(self) -> str:
        return self._getarg("access")

    @property
    def monitor_delta(self) -> float | None:
        return self._args["monitor_delta"]

    @property
    def timestamp(self) -> float | None:
        return self._getarg("timestamp")

    @property
    def posixseconds(self) -> int | None:
        return self._getarg("posixseconds")

    @property
    def nanoseconds(self) -> int | None:
        return self._getarg("nanoseconds")

    @property
    def precision(self) -> int | None:
        return self._getarg("precision")

    @property
    def units(self) -> str | None:
        return self._getarg("units")

    @property
    def enum_strs(self) -> tuple[str, ...] | None:
        return self._getarg("enum_strs")

    @property
    def upper_disp_limit(self) -> Any:
        return self._getarg("upper_disp_limit")

    @property
    def lower_disp_limit(self) -> Any:
        return self._getarg("lower_disp_limit")

    @property
    def upper_alarm_limit(self) -> Any:
        return self._getarg("upper_alarm_limit")

    @property
    def lower_alarm_limit(self) -> Any:
        return self._getarg("lower_alarm_limit")

    @property
    def upper_warning_limit(self) -> Any:
        return self._getarg("upper_warning_limit")

    @property
    def lower_warning_limit(self) -> Any:
        return self._getarg("lower_warning_limit")

    @property
    def upper_ctrl_limit(self) -> Any:
        return self._getarg("upper_ctrl_limit")

    @property
    def lower_ctrl_limit(self) -> Any:
        return self._getarg("lower_ctrl_limit")

    @property
    def put_complete(self) -> bool | None:
        """True once the last put with ``use_complete`` or a callback was confirmed."""
        return self._put_complete
