"""BusyFlyer next to ophyd EpicsSignals on pvflow's ophyd control layer, one Context for all."""

from __future__ import annotations

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
import pytest
from bluesky import RunEngine

from pvflow.bluesky.busy_flyer import BusyFlyer
from pvflow.bluesky.controller import FlyController
from pvflow.bluesky.plans import fly_scan
from tests.bluesky.documents import validate_run

pytest.importorskip("pvflow.ophyd")


@pytest.fixture
def pvflow_layer(context):
    import ophyd

    from pvflow.ophyd import use_pvflow

    previous = ophyd.cl
    use_pvflow(context)
    yield
    ophyd.cl = previous


def test_fly_scan_with_ophyd_signals_moved_and_in_the_baseline(flyscan_ioc, context,
                                                               pvflow_layer) -> None:
    from ophyd import EpicsSignal, EpicsSignalRO

    prefix = flyscan_ioc.prefix
    period = EpicsSignal(prefix + "fly:period", name="period")
    scans = EpicsSignalRO(prefix + "fly:scans", name="scans")
    for signal in (period, scans):
        signal.wait_for_connection(timeout=10)
    flyer = BusyFlyer(context, name="fly", controller=FlyController(prefix=prefix))
    before = scans.get()

    def plan():
        yield from bps.mv(period, 0.004)
        return (yield from fly_scan(flyer, points=10))

    engine = RunEngine({})
    documents: list = []
    engine.subscribe(lambda name, doc: documents.append((name, doc)))
    engine(bpp.baseline_wrapper(plan(), [scans]))
    validate_run(documents)
    streams = {doc["name"] for name, doc in documents if name == "descriptor"}
    assert streams == {"primary", "baseline"}
    (descriptor,) = [doc for name, doc in documents
                     if name == "descriptor" and doc["name"] == "primary"]
    assert descriptor["configuration"]["fly"]["data"]["fly_period"] == pytest.approx(0.004)
    baseline = [doc["data"]["scans"] for name, doc in documents if name == "event"]
    assert baseline == [before, before + 1]
