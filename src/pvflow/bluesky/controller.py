"""Where a busy-record fly-scan controller keeps its PVs (pure description, no I/O).

The defaults are those of ``pvflow ioc flyscan`` (and of the fly-scan tutorial): under a
prefix, ``mybusy``, the arrays ``t_array``/``x_array``/``y_array`` and the settings
``fly:points``, ``fly:start``, ``fly:end``, ``fly:period``. Another controller passes its own
suffixes (or full names with an empty prefix).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .fly_data import FlyArrays

DEFAULT_ARRAYS: Mapping[str, str] = MappingProxyType(
    {"t": "t_array", "x": "x_array", "y": "y_array"})
DEFAULT_SETTINGS: Mapping[str, str] = MappingProxyType(
    {"points": "fly:points", "start": "fly:start", "end": "fly:end", "period": "fly:period"})
# Without points and period among the settings, complete() waits this long at most.
FALLBACK_COMPLETE_TIMEOUT = 600.0
# Margin over points x period: the controller's start-up, scheduling jitter on a busy host.
COMPLETE_MARGIN = 30.0


@dataclass(frozen=True)
class FlyController:
    """Full PV names of one controller: its busy record, arrays and settings."""

    prefix: str = "prj:"
    busy: str = "mybusy"
    arrays: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ARRAYS))
    time_field: str = "t"
    settings: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))

    @property
    def busy_pv(self) -> str:
        return self.prefix + self.busy

    @property
    def fly_arrays(self) -> FlyArrays:
        return FlyArrays({name: self.prefix + suffix for name, suffix in self.arrays.items()},
                         self.time_field)

    @property
    def setting_pvs(self) -> dict[str, str]:
        return {name: self.prefix + suffix for name, suffix in self.settings.items()}

    def check_settings(self, values: Mapping[str, Any]) -> None:
        """Refuse names this controller has no PV for, naming the known ones."""
        unknown = sorted(set(values) - set(self.settings))
        if unknown:
            raise ValueError(f"{self.prefix}: no setting PV for {unknown}; known settings: "
                             f"{sorted(self.settings)}")

    def complete_timeout(self, settings: Mapping[str, Any]) -> float:
        """How long a scan with these setting values may take before it counts as stuck."""
        try:
            expected = float(settings["points"]) * float(settings["period"])
        except (KeyError, TypeError, ValueError):
            return FALLBACK_COMPLETE_TIMEOUT
        if not math.isfinite(expected) or expected < 0:
            return FALLBACK_COMPLETE_TIMEOUT
        return 2 * expected + COMPLETE_MARGIN


def same_value(read_back: Any, wanted: Any) -> bool:
    """Whether a setting read back is the value written (a refused put leaves the old one)."""
    try:
        return abs(float(read_back) - float(wanted)) <= 1e-9 * max(1.0, abs(float(wanted)))
    except (TypeError, ValueError):
        return bool(read_back == wanted)
