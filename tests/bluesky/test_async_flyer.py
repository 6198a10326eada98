"""AsyncBusyFlyer (ophyd-async) against the fly-scan controller IOC."""

from __future__ import annotations

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import pytest
from bluesky import RunEngine
from bluesky.utils import FailedStatus

from pvflow.bluesky.async_flyer import AsyncBusyFlyer
from pvflow.bluesky.controller import FlyController
from pvflow.bluesky.errors import FlyScanError
from pvflow.bluesky.plans import fly_scan
from pvflow.ioc.flyscan.sim import ScanSettings, positions
from tests.bluesky.documents import validate_run
from tests.bluesky.test_busy_flyer import rows


def make_flyer(ioc, context) -> AsyncBusyFlyer:
    return AsyncBusyFlyer(context, FlyController(prefix=ioc.prefix), name="afly", page_size=8)


def test_fly_scan_with_the_async_flyer(flyscan_ioc, context) -> None:
    engine = RunEngine({}, call_returns_result=True)
    documents: list = []
    engine.subscribe(lambda name, doc: documents.append((name, doc)))
    flyer = make_flyer(flyscan_ioc, context)
    result = engine(fly_scan(flyer, points=20, start=-1.0, end=1.0, period=0.005))
    validate_run(documents)
    assert result.plan_result == documents[0][1]["uid"]
    (descriptor,) = [doc for name, doc in documents if name == "descriptor"]
    assert descriptor["data_keys"]["afly_y"]["dtype_numpy"] == "<f8"
    xs, stamps = rows(documents, "afly_x")
    assert xs == pytest.approx(list(positions(ScanSettings(points=20, start=-1.0, end=1.0,
                                                           period=0.005))))
    assert stamps == rows(documents, "afly_t")[0]
    assert [len(doc["seq_num"]) for name, doc in documents if name == "event_page"] == [8, 8, 4]


def test_async_kickoff_while_flying_is_refused(flyscan_ioc, context) -> None:
    engine = RunEngine({})
    flyer = make_flyer(flyscan_ioc, context)

    @bpp.run_decorator()
    def twice():
        yield from bps.prepare(flyer, {"points": 200, "period": 0.02}, wait=True)
        yield from bps.kickoff(flyer, wait=True)
        try:
            yield from bps.kickoff(flyer, wait=True)
        finally:
            yield from bps.stop(flyer)
            yield from bps.complete(flyer, wait=True)

    # an async method's error reaches the plan inside the status that failed
    with pytest.raises(FailedStatus, match="kickoff refused: the fly scan on .*mybusy") as info:
        engine(twice())
    assert isinstance(info.value.__cause__, FlyScanError)


def test_async_refused_setting(flyscan_ioc, context) -> None:
    engine = RunEngine({})
    flyer = make_flyer(flyscan_ioc, context)
    with pytest.raises(FailedStatus, match="refused .*fly:points=99999"):
        engine(fly_scan(flyer, points=99999))
