"""A real softIoc and a lying server in one Context: the real channel must keep working."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

import pytest

from tests.conftest import standard_db
from tests.servers import SoftIoc


@pytest.fixture(scope="module")
def softioc():
    ioc = SoftIoc(standard_db("T:"))
    ioc.start()
    yield ioc
    ioc.close()


def joint_env(softioc, *servers) -> dict[str, str]:
    """The softIoc's environment, searching the lying servers too."""
    env = dict(softioc.env)
    env["EPICS_CA_ADDR_LIST"] = " ".join([env["EPICS_CA_ADDR_LIST"],
                                          *(server.address for server in servers)])
    return env


def peak_allocation(action: Callable[[], object]) -> tuple[int, Exception | None]:
    """Bytes allocated at the peak (by any thread) while ``action`` runs, and its error."""
    error: Exception | None = None
    tracemalloc.start()
    try:
        action()
    except Exception as raised:  # noqa: BLE001 - handed to the test to check
        error = raised
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, error
