"""A real softIoc and a lying server in one Context: the real channel must keep working."""

from __future__ import annotations

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
