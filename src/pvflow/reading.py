"""`Reading`: one value with its metadata, the same for CA and PVA (base layer, no I/O).

Code above the Context never needs to know which protocol produced a reading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# EPICS base's menuAlarmStat and menuAlarmSevr, in order: CA sends the index, qsrv the name
ALARM_STATUSES = (
    "NO_ALARM", "READ", "WRITE", "HIHI", "HIGH", "LOLO", "LOW", "STATE", "COS", "COMM",
    "TIMEOUT", "HWLIMIT", "CALC", "SCAN", "LINK", "SOFT", "BAD_SUB", "UDF", "DISABLE", "SIMM",
    "READ_ACCESS", "WRITE_ACCESS")
ALARM_SEVERITIES = ("NO_ALARM", "MINOR", "MAJOR", "INVALID")


def _name(names: tuple[str, ...], index: int) -> str:
    return names[index] if 0 <= index < len(names) else str(index)


@dataclass(frozen=True, slots=True)
class Reading:
    """A value and what the server said about it.

    ``timestamp`` is POSIX seconds (EPICS' 1990 epoch already converted). Fields a server does
    not send for the requested form stay ``None`` (``enum_strings`` stays empty).
    """

    value: Any
    timestamp: float | None = None
    severity: int = 0
    status: int = 0
    units: str | None = None
    precision: int | None = None
    display_limits: tuple[float, float] | None = None
    alarm_limits: tuple[float, float] | None = None
    warning_limits: tuple[float, float] | None = None
    control_limits: tuple[float, float] | None = None
    enum_strings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def status_name(self) -> str:
        """The alarm status as EPICS names it (``"HIHI"``)."""
        return _name(ALARM_STATUSES, self.status)

    @property
    def severity_name(self) -> str:
        """The alarm severity as EPICS names it (``"MAJOR"``)."""
        return _name(ALARM_SEVERITIES, self.severity)

    @property
    def alarm(self) -> str:
        """Status and severity as caget prints them (``"HIHI MAJOR"``)."""
        return f"{self.status_name} {self.severity_name}"

    def merged(self, other: Reading) -> Reading:
        """Fill fields this reading lacks from ``other`` (a CTRL reading plus a TIME reading)."""
        values = {}
        for name in self.__dataclass_fields__:
            mine = getattr(self, name)
            # Identity and type tests, not ``in (None, ())``: a numpy array value would be
            # compared element by element.
            missing = mine is None or (type(mine) is tuple and not mine)
            values[name] = getattr(other, name) if missing else mine
        return Reading(**values)
