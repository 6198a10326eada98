"""Fixtures for the Badger tests: the C softIoc (CA + PVA) serving the example environment's
records and the test records below, and interfaces pointed at it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest.importorskip("badger", reason="needs the badger extra (badger-opt)")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # Badger imports Qt widgets

from pvflow.badger import Interface  # noqa: E402
from pvflow.badger.example import EXAMPLE_DB  # noqa: E402
from tests.servers import SoftIoc  # noqa: E402

TEST_DB = """
# the write counter: every processing of B:COUNTED:SET adds one to B:COUNTED:WRITES
record(ao, "B:COUNTED:SET") { field(FLNK, "B:COUNTED:WRITES") }
record(calc, "B:COUNTED:WRITES") { field(INPA, "B:COUNTED:WRITES NPP") field(CALC, "A+1") }
# a put-callback that completes 5 s after the put: the delayed output holds the chain
record(ao, "B:SLOW:SET") { field(FLNK, "B:SLOW:DELAY") }
record(calcout, "B:SLOW:DELAY") {
    field(INPA, "B:SLOW:SET NPP") field(CALC, "A") field(ODLY, "5")
}
# setpoints whose readback ignores them
record(ao, "B:STUCK1:SET") {}
record(ao, "B:STUCK2:SET") {}
record(ai, "B:STUCK:RBV") { field(VAL, "-5") field(PINI, "YES") }
# two plain setpoints for the concurrency test
record(ao, "B:PAIR:A") {}
record(ao, "B:PAIR:B") {}
"""


@pytest.fixture(scope="module")
def machine() -> Iterator[SoftIoc]:
    """The C softIoc with CA and PVA (pvxslibs), on ports of its own."""
    ioc = SoftIoc(EXAMPLE_DB + TEST_DB, pva=True)
    ioc.start()
    yield ioc
    ioc.close()


@pytest.fixture
def interface(machine: SoftIoc) -> Iterator[Interface]:
    """An interface on ``machine`` with short delays (tests override fields per case)."""
    found = Interface(epics_variables=machine.env, timeout=2.0, retry_delay=0.1)
    yield found
    found.reset_interface()
