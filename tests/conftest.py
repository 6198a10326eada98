"""Fixtures shared by every test folder: real servers on free loopback ports."""

from __future__ import annotations

import os

import pytest

from tests.servers import SoftIoc

# What a test does not set itself stays on loopback: a peer client's background thread (caproto
# retrying its searches) reads these from os.environ long after its test's patch has ended, and
# would otherwise broadcast to 255.255.255.255.
for _key, _value in {"EPICS_CA_ADDR_LIST": "127.0.0.1", "EPICS_CA_AUTO_ADDR_LIST": "NO",
                     "EPICS_PVA_ADDR_LIST": "127.0.0.1", "EPICS_PVA_AUTO_ADDR_LIST": "NO"}.items():
    os.environ.setdefault(_key, _value)

STANDARD_DB = """
record(ai, "$(P)ai") { field(VAL, "1.5") field(EGU, "mm") field(PREC, "3")
    field(HOPR, "10") field(LOPR, "-10") field(HIHI, "8") field(HIGH, "6") field(LOW, "-6")
    field(LOLO, "-8") field(HHSV, "MAJOR") field(HSV, "MINOR") field(LSV, "MINOR")
    field(LLSV, "MAJOR") field(PINI, "YES") }
record(ao, "$(P)ao") { field(VAL, "2.5") field(DRVH, "100") field(DRVL, "-100") field(PINI, "YES") }
record(longout, "$(P)long") { field(VAL, "42") field(PINI, "YES") }
record(mbbo, "$(P)enum") { field(ZRST, "zero") field(ONST, "one") field(TWST, "two") field(PINI, "YES") }
record(bo, "$(P)bool") { field(ZNAM, "Off") field(ONAM, "On") }
record(stringout, "$(P)string") { field(VAL, "hello") field(PINI, "YES") }
record(waveform, "$(P)wave") { field(FTVL, "DOUBLE") field(NELM, "1000") }
record(waveform, "$(P)shorts") { field(FTVL, "SHORT") field(NELM, "16") }
record(waveform, "$(P)floats") { field(FTVL, "FLOAT") field(NELM, "16") }
record(waveform, "$(P)longs") { field(FTVL, "LONG") field(NELM, "16") }
record(waveform, "$(P)chars") { field(FTVL, "CHAR") field(NELM, "256") }
record(waveform, "$(P)strings") { field(FTVL, "STRING") field(NELM, "4") }
record(waveform, "$(P)big") { field(FTVL, "DOUBLE") field(NELM, "2000000") }
record(waveform, "$(P)empty") { field(FTVL, "DOUBLE") field(NELM, "10") }
record(ai, "$(P)readonly") { field(VAL, "3") field(ASG, "READONLY") }
record(calcout, "$(P)slow") { field(CALC, "A") field(ODLY, "0.3") }
"""

ACCESS_SECURITY = """
ASG(DEFAULT) { RULE(1, READ) RULE(1, WRITE) }
ASG(READONLY) { RULE(1, READ) }
"""


def standard_db(prefix: str) -> str:
    return STANDARD_DB.replace("$(P)", prefix)


def _running(pva: bool):
    ioc = SoftIoc(standard_db("T:"), pva=pva, access_security=ACCESS_SECURITY)
    ioc.start()
    yield ioc
    ioc.close()


def _context_on(ioc):
    from pvflow import Context

    with Context(ioc.env, timeout=5.0) as ctx:
        yield ctx


@pytest.fixture(scope="module")
def softioc():
    """The C softIoc (epicscorelibs) serving the standard records under prefix ``T:``; one per
    test module, so no module sees values another one left behind."""
    yield from _running(pva=False)


@pytest.fixture
def context(softioc):
    yield from _context_on(softioc)


@pytest.fixture(scope="module")
def pva_softioc():
    """The pvxs softIoc (CA + PVA) serving the standard records under prefix ``T:``."""
    yield from _running(pva=True)


@pytest.fixture
def pva_context(pva_softioc):
    yield from _context_on(pva_softioc)
