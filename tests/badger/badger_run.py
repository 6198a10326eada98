"""Badger's own plugin loader and routine runner on the folder ``pvflow badger install``
wrote: ``python -m tests.badger.badger_run PLUGIN_ROOT`` prints one JSON report.

Run in a subprocess by test_plugin_loader.py with HOME in a temporary folder (Badger keeps
its settings in ~/.config/config.yaml, fixes its plugin root at import and adds it to
sys.path) and the EPICS variables of the test IOC (Badger builds interfaces with defaults).
"""

from __future__ import annotations

import json
import sys
from typing import Any

Q1, Q2 = "PVFLOW:EXAMPLE:Q1:SET", "pva://PVFLOW:EXAMPLE:Q2:SET"
SIZE, CHARGE = "PVFLOW:EXAMPLE:BEAM:SIZE", "pva://PVFLOW:EXAMPLE:BEAM:CHARGE"
ACTIVE_CHECKS = 6  # run_routine asks twice per step: three optimiser steps


def run_routine() -> list[dict[str, Any]]:
    """A short random search minimising the beam size, evaluated through the plugins."""
    import pandas as pd
    from badger.core import run_routine as badger_run_routine
    from badger.errors import BadgerRunTerminated
    from badger.routine import Routine
    from xopt import VOCS
    from xopt.generators import RandomGenerator

    vocs = VOCS(variables={Q1: [-1.0, 1.0], Q2: [-1.0, 1.0]}, objectives={SIZE: "MINIMIZE"},
                observables=[CHARGE])
    routine = Routine(name="pvflow", generator=RandomGenerator(vocs=vocs),
                      environment={"name": "pvflow_example"},
                      initial_points=pd.DataFrame({Q1: [0.3], Q2: [-0.2]}))
    evaluated: list[dict[str, Any]] = []
    steps = iter(range(ACTIVE_CHECKS))

    def active() -> int:
        return 0 if next(steps, None) is not None else 2  # 2: stop the run

    def keep(result: Any) -> None:
        evaluated.extend(result[[Q1, Q2, SIZE, CHARGE]].to_dict("records"))

    try:
        badger_run_routine(routine, active, lambda candidates: None, keep, lambda states: None,
                           verbose=0)
    except BadgerRunTerminated:
        pass
    return evaluated


def main(root: str) -> dict[str, Any]:
    from badger.settings import init_settings

    init_settings().write_value("BADGER_PLUGIN_ROOT", root)
    from badger.environment import instantiate_env
    from badger.factory import get_env, get_intf, list_env, list_intf

    interface_class, interface_configs = get_intf("pvflow")
    environment_class, environment_configs = get_env("pvflow_example")
    environment = instantiate_env(environment_class, environment_configs)
    environment.set_variables({Q1: 0.5, Q2: 0.25})
    return {
        "interfaces": list_intf(),
        "environments": list_env(),
        "interface_class": f"{interface_class.__module__}.{interface_class.__qualname__}",
        "interface_params": interface_configs["params"],
        "environment_interface": environment_configs["interface"],
        "environment_variables": environment_configs["variables"],
        "observed": environment.get_observables([SIZE, CHARGE]),
        "routine": run_routine(),
    }


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
