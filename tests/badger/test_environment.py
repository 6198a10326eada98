"""Badger environments driving pvflow's interface: the example environment on the C softIoc,
and an environment over pvflow's own detector IOC, each over CA and PVA."""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import partial
from typing import ClassVar

import pytest
from badger import environment
from badger.errors import BadgerEnvVarError

from pvflow.badger import Interface, wait_for_readback
from pvflow.badger.example import PREFIX, Environment
from tests.ioc.detector_process import DetectorProcess
from tests.servers import SoftIoc

Q1, Q2 = f"{PREFIX}Q1:SET", f"pva://{PREFIX}Q2:SET"
SIZE, CHARGE = f"{PREFIX}BEAM:SIZE", f"pva://{PREFIX}BEAM:CHARGE"


def beam_size(q1: float, q2: float) -> float:
    """What the example database computes."""
    return math.sqrt((q1 - 0.3) ** 2 + (q2 + 0.2) ** 2 + 0.01)


@pytest.fixture
def example(machine: SoftIoc) -> Iterator[Environment]:
    found = Environment(interface=Interface(epics_variables=machine.env))
    yield found
    found.interface.reset_interface()


def test_example_environment_sets_and_observes(example: Environment) -> None:
    example.set_variables({Q1: 0.1, Q2: 0.4})
    assert example.get_variables([Q1, Q2]) == {Q1: 0.1, Q2: 0.4}
    observed = example.get_observables([SIZE, CHARGE])
    assert observed[SIZE] == pytest.approx(beam_size(0.1, 0.4), abs=1e-9)
    assert observed[CHARGE] == pytest.approx(100 * math.exp(-observed[SIZE]), abs=1e-9)


def test_badger_refuses_a_point_outside_the_bounds(example: Environment) -> None:
    with pytest.raises(BadgerEnvVarError):
        example.set_variables({Q1: 2.0})


def detector_environment(prefix: str, variable_protocol: str,
                         observable_protocol: str) -> type[environment.Environment]:
    """An environment with the detector's exposure as its variable, built per IOC prefix
    (Badger environments name their channels in class variables)."""

    class Detector(environment.Environment):
        name: ClassVar[str] = "detector"
        variables: ClassVar[dict[str, list[float]]] = {
            f"{variable_protocol}{prefix}duration": [0.01, 10.0]}
        observables: ClassVar[list[str]] = [f"{observable_protocol}{prefix}duration",
                                            f"{observable_protocol}{prefix}state"]

    return Detector


@pytest.fixture(scope="module")
def detector() -> Iterator[DetectorProcess]:
    """pvflow's detector IOC (sim backend): pythonSoftIOC records served over CA and PVA."""
    process = DetectorProcess()
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.mark.parametrize("variable_protocol, observable_protocol",
                         [("", "pva://"), ("pva://", "ca://")])
def test_environment_on_our_detector_ioc(detector: DetectorProcess, variable_protocol: str,
                                         observable_protocol: str) -> None:
    """The environment passes no validations: the interface's own field confirms the put
    (over PVA the IOC acknowledges it before the record has processed)."""
    environment_class = detector_environment(detector.prefix, variable_protocol,
                                             observable_protocol)
    variable = f"{variable_protocol}{detector.prefix}duration"
    confirm = partial(wait_for_readback, tolerance=0, timeout=5,
                      readback_pv=f"{observable_protocol}{detector.prefix}duration")
    interface = Interface(epics_variables=detector.epics_env, validations={variable: confirm})
    try:
        env = environment_class(interface=interface)
        duration = 0.25 if variable_protocol else 0.5
        env.set_variables({variable: duration})
        observed = env.get_observables([f"{observable_protocol}{detector.prefix}duration",
                                        f"{observable_protocol}{detector.prefix}state"])
    finally:
        interface.reset_interface()
    assert observed == {f"{observable_protocol}{detector.prefix}duration": duration,
                        f"{observable_protocol}{detector.prefix}state": "READY"}
