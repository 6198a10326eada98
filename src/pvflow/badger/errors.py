"""Errors of the Badger interface (integration layer; extends pvflow's exception tree).

    PVFlowError
    ├── ReadbackError      a validation found the readback away from the setpoint
    └── SetValuesError     several channels of one parallel set_values call failed

Both name the set PV, because the optimiser shows only the message: an operator must see
which magnet refused, what it was asked for and what it reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pvflow import PVFlowError


class ReadbackError(PVFlowError):
    """The readback of a set PV did not reach the expected value in time."""

    def __init__(self, set_pv: str, set_value: Any, readback_pv: str, readback: Any,
                 expected: Any, tolerance: float, timeout: float):
        if readback is None:
            seen = f"sent no value within {timeout} s"
        else:
            seen = f"is {readback!r} after {timeout} s"
        super().__init__(f"{set_pv} was set to {set_value!r} but its readback {readback_pv} "
                         f"{seen}, expected {expected!r} ± {tolerance}", pv=set_pv)
        self.readback_pv = readback_pv
        self.readback = readback
        self.expected = expected


class SetValuesError(PVFlowError):
    """Every failure of one parallel ``set_values`` call, by channel (``.errors``)."""

    def __init__(self, errors: Mapping[str, BaseException]):
        details = "; ".join(f"{name}: {error}" for name, error in errors.items())
        super().__init__(f"set_values failed on {len(errors)} channel(s): {details}",
                         pv=next(iter(errors), None))
        self.errors = dict(errors)
