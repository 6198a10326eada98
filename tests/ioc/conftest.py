"""The caproto CA client every IOC test module drives its module's ``ioc`` fixture with."""

from __future__ import annotations

import pytest

from .clients import CaClient


@pytest.fixture(scope="module")
def ca(ioc):
    client = CaClient(ioc.epics_env)
    yield client
    client.close()
