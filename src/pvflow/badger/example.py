"""The example Badger environment ``pvflow_example`` and the IOC database it runs against.

Two quadrupole setpoints, one written over Channel Access and one over pvAccess, each with a
readback; a beam size that is smallest at Q1 = 0.3, Q2 = -0.2, read over CA, and a charge
read over pvAccess. Serve it with the C softIoc (``python -m pvxslibs.ioc -d example.db``,
written next to the plugin by ``pvflow badger install``) and minimise ``BEAM:SIZE``.

The processing chain is FLNK, not CP links, so a completed CA put means the readbacks and
the beam size are already up to date; the pvAccess setpoint is confirmed by its validation.
"""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

from badger import environment
from badger.errors import BadgerNoInterfaceError

from .validation import Validation, wait_for_readback

PREFIX = "PVFLOW:EXAMPLE:"

EXAMPLE_DB = """\
# pvflow_example: two quadrupoles and a beam (python -m pvxslibs.ioc -d example.db)
record(ao, "PVFLOW:EXAMPLE:Q1:SET") {
    field(DRVL, "-1") field(DRVH, "1") field(PREC, "4") field(FLNK, "PVFLOW:EXAMPLE:Q1:RBV")
}
record(calc, "PVFLOW:EXAMPLE:Q1:RBV") {
    field(INPA, "PVFLOW:EXAMPLE:Q1:SET NPP") field(CALC, "A") field(PREC, "4")
    field(FLNK, "PVFLOW:EXAMPLE:BEAM:SIZE")
}
record(ao, "PVFLOW:EXAMPLE:Q2:SET") {
    field(DRVL, "-1") field(DRVH, "1") field(PREC, "4") field(FLNK, "PVFLOW:EXAMPLE:Q2:RBV")
}
record(calc, "PVFLOW:EXAMPLE:Q2:RBV") {
    field(INPA, "PVFLOW:EXAMPLE:Q2:SET NPP") field(CALC, "A") field(PREC, "4")
    field(FLNK, "PVFLOW:EXAMPLE:BEAM:SIZE")
}
record(calc, "PVFLOW:EXAMPLE:BEAM:SIZE") {
    field(INPA, "PVFLOW:EXAMPLE:Q1:RBV NPP") field(INPB, "PVFLOW:EXAMPLE:Q2:RBV NPP")
    field(CALC, "SQRT((A-0.3)^2+(B+0.2)^2+0.01)") field(EGU, "mm") field(PREC, "4")
    field(PINI, "YES") field(FLNK, "PVFLOW:EXAMPLE:BEAM:CHARGE")
}
record(calc, "PVFLOW:EXAMPLE:BEAM:CHARGE") {
    field(INPA, "PVFLOW:EXAMPLE:BEAM:SIZE NPP") field(CALC, "100*EXP(-A)") field(EGU, "pC")
    field(PREC, "3")
}
"""


class Environment(environment.Environment):
    """Minimise ``PVFLOW:EXAMPLE:BEAM:SIZE`` over two quadrupoles (Q1 over CA, Q2 over PVA).

    Each setpoint is checked against its readback, passed to the interface the way Badger's
    EPICS environments do: ``set_values(inputs, configs={set PV: partial})``.
    """

    name: ClassVar[str] = "pvflow_example"
    variables: ClassVar[dict[str, list[float]]] = {
        f"{PREFIX}Q1:SET": [-1.0, 1.0],
        f"pva://{PREFIX}Q2:SET": [-1.0, 1.0],
    }
    observables: ClassVar[list[str]] = [f"{PREFIX}BEAM:SIZE", f"pva://{PREFIX}BEAM:CHARGE"]

    readback_tolerance: float = 1e-3
    readback_timeout: float = 5.0

    def validations(self) -> dict[str, Validation]:
        """Set PV -> check of its readback, built from this environment's parameters."""
        check = partial(wait_for_readback, tolerance=self.readback_tolerance,
                        timeout=self.readback_timeout)
        return {
            f"{PREFIX}Q1:SET": partial(check, readback_pv=f"{PREFIX}Q1:RBV"),
            f"pva://{PREFIX}Q2:SET": partial(check, readback_pv=f"pva://{PREFIX}Q2:RBV"),
        }

    def set_variables(self, variable_inputs: dict[str, float]) -> Any:
        if not self.interface:
            raise BadgerNoInterfaceError
        return self.interface.set_values(variable_inputs, configs=self.validations())
