"""pytest plugin: ophyd's own test suite, unmodified from its sdist, on pvflow's control layer.

    PYTHONPATH=<sdist> pytest -c tests/upstream/ophyd.ini -p tests.upstream.ophyd_plugin \\
        <sdist>/ophyd/tests/test_signal.py ...   [--ophyd-layer pyepics]

ophyd's conftest runs every test once per layer through a session fixture
``cl_selector(params=["caproto", "pyepics"])`` that calls ``ophyd.set_cl(name)``. This plugin
parametrises that fixture with the one layer asked for (``pvflow`` by default, so test ids end
in ``[pvflow]``) and teaches ``set_cl`` the name ``pvflow``. It also gives the session its own
ports and CA repeater, and hands that repeater to caproto's test helpers, which would
otherwise spawn one they never stop.
"""

from __future__ import annotations

import pytest

from tests.upstream.epics_environment import Repeater, isolate

isolate()  # before ophyd's conftest imports an EPICS client

import ophyd  # noqa: E402  (after the environment is set)

from pvflow.ophyd import use_pvflow  # noqa: E402

_original_set_cl = ophyd.set_cl


def set_cl(control_layer: str | None = None, *, pv_telemetry: bool = False) -> None:
    """ophyd's ``set_cl`` plus the name ``pvflow``."""
    if control_layer == "pvflow":
        use_pvflow()
        return
    _original_set_cl(control_layer, pv_telemetry=pv_telemetry)


ophyd.set_cl = set_cl  # ophyd's conftest imports it by name, after this plugin loads

_repeater = Repeater()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--ophyd-layer", default="pvflow", choices=("pvflow", "pyepics", "caproto"),
                     help="the control layer ophyd's suite runs on (default: pvflow)")


def pytest_configure(config: pytest.Config) -> None:
    process = _repeater.start()
    import caproto.tests.conftest as caproto_testing

    caproto_testing._repeater_process = process  # its start_repeater() now does nothing


def pytest_unconfigure(config: pytest.Config) -> None:
    _repeater.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A parametrize mark takes precedence over the fixture's own params (pytest's rule)."""
    if "cl_selector" in metafunc.fixturenames:
        layer = metafunc.config.getoption("--ophyd-layer")
        metafunc.definition.add_marker(pytest.mark.parametrize(
            "cl_selector", [layer], indirect=True, scope="session"))
