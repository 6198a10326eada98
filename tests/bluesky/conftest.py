"""A fly-scan controller IOC per test module and a pvflow Context reaching it."""

from __future__ import annotations

import pytest

from tests.ioc.ioc_process import IocProcess, unique_prefix

pytest.importorskip("ophyd")
pytest.importorskip("bluesky")


@pytest.fixture(scope="module")
def flyscan_ioc():
    ioc = IocProcess(["-m", "pvflow", "ioc", "flyscan"],
                     {"FLYSCAN_PREFIX": unique_prefix(), "FLYSCAN_NELM": "2000",
                      "FLYSCAN_SEED": "1"}, name="fly-scan IOC")
    with ioc:
        ioc.prefix = ioc.env["FLYSCAN_PREFIX"]
        yield ioc


@pytest.fixture
def context(flyscan_ioc):
    from pvflow import Context

    with Context(flyscan_ioc.epics_env, timeout=10.0) as ctx:
        yield ctx
