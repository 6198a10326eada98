"""pytest plugin: ophyd-async's own EPICS system tests, unmodified from its sdist, with every
``ca://`` signal on pvflow's backend.

    cd <sdist> && PYTHONPATH=<repo> pytest -p tests.upstream.ophyd_async_plugin \\
        tests/system_tests/epics/core

The tests start their own IOC (CA + PVA) as a subprocess; this plugin gives the session its
own ports and CA repeater and calls :func:`pvflow.ophyd_async.use_pvflow_backend` before any
test module builds a signal. ``pva://`` signals stay on ophyd-async's p4p backend.
"""

from __future__ import annotations

import pytest

from tests.upstream.epics_environment import Repeater, isolate

isolate()

from pvflow.ophyd_async import use_pvflow_backend  # noqa: E402  (after the environment)

use_pvflow_backend()

_repeater = Repeater()


def pytest_configure(config: pytest.Config) -> None:
    _repeater.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    _repeater.stop()
