"""pytest plugin: pyepics' own test suite, unmodified from its sdist, on pvflow.epics.

    PYTHONPATH=<src>:<repo> pytest -p tests.upstream.pyepics_plugin <sdist>/tests/test_pv_*.py

Before any test module imports ``epics``, ``use_as_epics()`` makes that name pvflow.epics. The
session then starts what pyepics' ``tests/Setup`` describes: a C softIoc loaded with
``pydebug.db`` (prefix ``PyTest:``) and ``pyclearcache.db``, and pyepics' ``simulator.py``
(which changes those PVs every 100 ms), itself on pvflow.epics. Both get free loopback ports
and are stopped by PID.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from pvflow.demo.processes import ServerProcess
from tests.servers import SoftIoc

import pvflow.epics  # noqa: E402,I001

pvflow.epics.use_as_epics()  # before pyepics' test modules import epics

SIMULATOR_READY = "Data initialized"
_RUN_SIMULATOR = ("import sys, runpy, pvflow.epics; pvflow.epics.use_as_epics(); "
                  "runpy.run_path(sys.argv[1], run_name='__main__')")


def _database(setup: Path) -> str:
    return ((setup / "pydebug.db").read_text().replace("$(P)", "PyTest:") + "\n"
            + (setup / "pyclearcache.db").read_text().replace("$(P)", "PyTestClearCache:"))


class _Servers:
    ioc: SoftIoc | None = None
    simulator: ServerProcess | None = None


def pytest_configure(config: pytest.Config) -> None:
    setup = Path(str(config.rootpath)) / "Setup"  # --rootdir is the sdist's tests/
    ioc = _Servers.ioc = SoftIoc(_database(setup))
    ioc.start()
    environment = ioc.env
    os.environ.update(environment)  # pvflow reads EPICS_* when its first Context starts
    simulator = _Servers.simulator = ServerProcess(
        [sys.executable, "-u", "-c", _RUN_SIMULATOR, str(setup / "simulator.py")],
        environment, SIMULATOR_READY, name="pyepics-simulator", cwd=setup, keep_stdin=False)
    simulator.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    for server in (_Servers.simulator, _Servers.ioc):
        if server is not None:
            server.stop()
    if _Servers.ioc is not None:
        _Servers.ioc.close()
