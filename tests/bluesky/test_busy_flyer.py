"""BusyFlyer against the fly-scan controller IOC: bp.fly, declare_stream/collect, fly_scan."""

from __future__ import annotations

import bluesky.plan_stubs as bps
import bluesky.plans as bp
import bluesky.preprocessors as bpp
import pytest
from bluesky import RunEngine

from pvflow.bluesky.busy_flyer import BusyFlyer
from pvflow.bluesky.controller import FlyController
from pvflow.bluesky.errors import FlyScanError, FlyScanTimeoutError
from pvflow.bluesky.plans import fly_scan
from pvflow.ioc.flyscan.sim import ScanSettings, positions, signal
from tests.bluesky.documents import validate_run


def make_flyer(ioc, context, **kwargs) -> BusyFlyer:
    return BusyFlyer(context, name="fly", controller=FlyController(prefix=ioc.prefix), **kwargs)


def run_collecting(plan) -> tuple[list[tuple[str, dict]], object]:
    engine = RunEngine({}, call_returns_result=True)
    documents: list[tuple[str, dict]] = []
    engine.subscribe(lambda name, doc: documents.append((name, doc)))
    result = engine(plan)
    return documents, result


def rows(documents, key: str) -> tuple[list[float], list[float]]:
    values, stamps = [], []
    for name, doc in documents:
        if name == "event_page":
            values.extend(doc["data"][key])
            stamps.extend(doc["timestamps"][key])
    return values, stamps


def test_bp_fly_pages_every_point_with_trigger_times(flyscan_ioc, context) -> None:
    flyer = make_flyer(flyscan_ioc, context, page_size=7)
    flyer.configure({"points": 20, "start": -1.0, "end": 3.0, "period": 0.01})
    documents, _ = run_collecting(bp.fly([flyer]))
    validate_run(documents)
    (descriptor,) = [doc for name, doc in documents if name == "descriptor"]
    assert descriptor["name"] == "primary"
    x_key = descriptor["data_keys"]["fly_x"]
    assert x_key["dtype"] == "number" and x_key["shape"] == [] and x_key["dtype_numpy"] == "<f8"
    assert x_key["source"] == f"PV:{flyscan_ioc.prefix}x_array"
    assert descriptor["configuration"]["fly"]["data"]["fly_points"] == 20
    assert [len(doc["seq_num"]) for name, doc in documents if name == "event_page"] == [7, 7, 6]

    settings = ScanSettings(points=20, start=-1.0, end=3.0, period=0.01)
    xs, stamps = rows(documents, "fly_x")
    ys, _ = rows(documents, "fly_y")
    times, _ = rows(documents, "fly_t")
    assert xs == pytest.approx(list(positions(settings)))
    assert ys == pytest.approx([signal(settings, x) for x in positions(settings)])
    assert stamps == times, "timestamps are the controller's trigger times"
    assert list(context.get(f"{flyscan_ioc.prefix}t_array")) == times
    assert documents[-1][1]["exit_status"] == "success"


def test_declare_stream_and_collect(flyscan_ioc, context) -> None:
    flyer = make_flyer(flyscan_ioc, context, stream_name="fast", nested=False)
    flyer.configure({"points": 5, "period": 0.01})

    @bpp.run_decorator()
    def plan():
        yield from bps.declare_stream(flyer, name="fast", collect=True)
        yield from bps.kickoff(flyer, wait=True)
        yield from bps.complete(flyer, wait=True)
        yield from bps.collect(flyer, name="fast")

    documents, _ = run_collecting(plan())
    validate_run(documents)
    assert [doc["name"] for name, doc in documents if name == "descriptor"] == ["fast"]
    assert len(rows(documents, "fly_x")[0]) == 5


@pytest.mark.parametrize("nested", [True, False])
def test_fly_scan_plan_configures_and_returns_the_run_uid(flyscan_ioc, context, nested) -> None:
    flyer = make_flyer(flyscan_ioc, context, nested=nested)
    documents, result = run_collecting(
        fly_scan(flyer, points=12, start=0.0, end=1.1, period=0.005, md={"sample": "Si"}))
    validate_run(documents)
    start = documents[0][1]
    assert result.plan_result == start["uid"]
    assert start["sample"] == "Si" and start["num_points"] == 12
    assert rows(documents, "fly_x")[0] == pytest.approx([0.1 * i for i in range(12)])
    assert context.get(f"{flyscan_ioc.prefix}fly:points") == 12


def test_refused_setting_names_the_pv(flyscan_ioc, context) -> None:
    flyer = make_flyer(flyscan_ioc, context)
    with pytest.raises(ValueError, match="fly:period=0"):
        flyer.configure({"period": 0})
    with pytest.raises(ValueError, match="no setting PV for \\['speed'\\]"):
        flyer.configure({"speed": 3})


def test_kickoff_while_flying_is_refused_and_timeout_aborts(flyscan_ioc, context) -> None:
    flyer = make_flyer(flyscan_ioc, context, complete_timeout=0.2)
    flyer.configure({"points": 500, "period": 0.05})  # 25 s: far longer than the timeout
    try:
        flyer.kickoff().wait(10)
        with pytest.raises(FlyScanError, match="kickoff refused: the fly scan on .*mybusy"):
            flyer.kickoff()
        other = make_flyer(flyscan_ioc, context)
        with pytest.raises(FlyScanError, match="already Busy"):
            other.kickoff()
        status = flyer.complete()
        with pytest.raises(FlyScanTimeoutError, match="still Busy 0.2 s after complete"):
            status.wait(30)
        # the timeout aborted the scan: the busy record goes back to Done by itself
        done = flyer.kickoff  # a new kickoff works once the controller is Done again
        flyer.complete_timeout = 30.0
        flyer.configure({"points": 3, "period": 0.01})
        wait_for_done(context, flyscan_ioc.prefix + "mybusy")
        done().wait(10)
        flyer.complete().wait(30)
        assert len(list(flyer.collect_pages())[0]["data"]["fly_x"]) == 3
    finally:
        context.put(flyscan_ioc.prefix + "mybusy", 0, wait=False)


def test_a_kickoff_right_after_a_timeout_runs_its_own_scan_whole(flyscan_ioc, context) -> None:
    """The timeout aborts the scan, and the controller takes a moment to end it; a Busy put
    meanwhile would have its put-callback completed at once, before its scan ran."""
    flyer = make_flyer(flyscan_ioc, context)
    try:
        for _ in range(5):
            flyer.complete_timeout = 0.2
            flyer.configure({"points": 500, "period": 0.05})
            flyer.kickoff().wait(10)
            with pytest.raises(FlyScanTimeoutError):
                flyer.complete().wait(30)
            flyer.complete_timeout = 30.0
            flyer.configure({"points": 3, "period": 0.01})
            flyer.kickoff().wait(10)
            flyer.complete().wait(30)
            assert len(list(flyer.collect_pages())[0]["data"]["fly_x"]) == 3
    finally:
        context.put(flyscan_ioc.prefix + "mybusy", 0, wait=False)


def wait_for_done(context, pv: str) -> None:
    import threading

    done = threading.Event()
    with context.subscribe(pv, lambda value: value == 0 and done.set(), form="value"):
        assert done.wait(30), f"{pv} stayed Busy"


def test_controller_killed_mid_scan_fails_the_scan_naming_the_record() -> None:
    """The IOC dies while the scan runs: complete() fails at once with the busy record's
    name and the reason, rather than waiting out any timeout."""
    from pvflow import Context
    from tests.ioc.ioc_process import IocProcess, unique_prefix

    ioc = IocProcess(["-m", "pvflow", "ioc", "flyscan"],
                     {"FLYSCAN_PREFIX": unique_prefix(), "FLYSCAN_NELM": "2000"},
                     name="fly-scan IOC to kill")
    with ioc, Context(ioc.epics_env, timeout=10.0) as context:
        prefix = ioc.env["FLYSCAN_PREFIX"]
        flyer = BusyFlyer(context, name="fly", controller=FlyController(prefix=prefix),
                          complete_timeout=None)
        flyer.configure({"points": 1000, "period": 0.05})  # 50 s unless it dies
        flyer.kickoff().wait(10)
        status = flyer.complete()
        assert not status.done
        ioc.process.kill()
        with pytest.raises(FlyScanError, match=f"{prefix}mybusy failed: .*closed"):
            status.wait(30)
