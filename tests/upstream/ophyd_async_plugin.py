"""pytest plugin: ophyd-async's own EPICS system tests, unmodified from its sdist, with every
``ca://`` and ``pva://`` signal (and PVI discovery) on pvflow's backend.

    cd <sdist> && PYTHONPATH=<repo> pytest -p tests.upstream.ophyd_async_plugin \\
        tests/system_tests/epics/core

The tests start their own IOC (CA + PVA) as a subprocess; this plugin gives the session its
own ports and CA repeater and calls :func:`pvflow.ophyd_async.use_pvflow_backend` before any
test module builds a signal. The session fails if ophyd-async's p4p client was started
anyway: a pvAccess test passing on p4p would prove nothing about pvflow.
"""

from __future__ import annotations

import pytest

from tests.upstream.epics_environment import Repeater, isolate

isolate()

from ophyd_async.epics.core import _p4p  # noqa: E402  (after the environment)

from pvflow.ophyd_async import use_pvflow_backend  # noqa: E402

use_pvflow_backend()

_repeater = Repeater()


def pytest_configure(config: pytest.Config) -> None:
    _repeater.start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _p4p._context is not None:
        print("\nophyd-async's p4p client was used: some pva:// signal bypassed pvflow")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_unconfigure(config: pytest.Config) -> None:
    _repeater.stop()
