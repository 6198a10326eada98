"""The detector IOC driven over CA (caproto) and PVA (p4p), as Diss clients would."""

from __future__ import annotations

import numpy as np
import pytest

from .clients import (
    Collector,
    pva_context,
    pva_monitor,
    pvflow_monitor,
    wait_for_monitor,
)
from .detector_process import DetectorProcess, acquire_series

NUM_IMAGES, WIDTH, HEIGHT = 3, 16, 8
CA_STRING, CA_LONG, CA_DOUBLE = 0, 5, 6


@pytest.fixture(scope="module")
def ioc():
    with DetectorProcess({"DISSSIM_CHIP_SIZE": f"{WIDTH}:{HEIGHT}",
                          "DISSSIM_NUM_IMAGES": str(NUM_IMAGES),
                          "DISSSIM_CHANNELS": "ch0:ch1",
                          "DISSSIM_CHANNEL_PARAMS": "enerj=3.14"}) as process:
        yield process


@pytest.fixture(scope="module")
def pva(ioc):
    context = pva_context(ioc.epics_env)
    yield context
    context.close()


def test_pv_types_are_those_of_diss(ca, ioc):
    expected = {"state": CA_STRING, "acquire": CA_LONG, "duration": CA_DOUBLE,
                "cancel": CA_LONG, "clear": CA_LONG, "error": CA_STRING, "ssqcnt": CA_LONG,
                "uuid": CA_STRING, "numid": CA_LONG, "start_ts": CA_DOUBLE,
                "acq_td": CA_DOUBLE}
    for channel in ("ch0", "ch1"):
        expected.update({f"{channel}:image": CA_DOUBLE, f"{channel}:asize0": CA_LONG,
                         f"{channel}:asize1": CA_LONG, f"{channel}:asize2": CA_LONG,
                         f"{channel}:enerj": CA_DOUBLE})
    for suffix, channel_type in expected.items():
        assert ca.read(ioc.pv(suffix)).data_type == channel_type, suffix
    assert ca.get(ioc.pv("state")) == "READY"
    assert ca.get(ioc.pv("duration")) == 1.0
    assert [ca.get(ioc.pv(f"ch0:asize{axis}")) for axis in range(3)] == [NUM_IMAGES, WIDTH,
                                                                          HEIGHT]
    assert ca.get(ioc.pv("ch1:enerj")) == pytest.approx(3.14)


def test_acquire_publishes_one_series(ca, ioc):
    ca.put(ioc.pv("duration"), 0.0)
    ssqcnt_before = ca.get(ioc.pv("ssqcnt"))
    uuid_before = ca.get(ioc.pv("uuid"))
    acquire_series(ca, ioc)
    assert ca.get(ioc.pv("acquire")) == 0
    assert ca.get(ioc.pv("ssqcnt")) == (ssqcnt_before + 1) % 16
    assert ca.get(ioc.pv("uuid")) != uuid_before
    for channel in ("ch0", "ch1"):
        image = np.asarray(ca.get(ioc.pv(f"{channel}:image")))
        assert image.size == NUM_IMAGES * WIDTH * HEIGHT
        stamps = image.reshape(NUM_IMAGES, WIDTH, HEIGHT)[:, 0, 0]
        assert list(np.diff(stamps)) == [1] * (NUM_IMAGES - 1)  # consecutive sim images
    assert len(ca.get(ioc.pv("start_ts"))) == NUM_IMAGES
    assert len(ca.get(ioc.pv("acq_td"))) == NUM_IMAGES


def test_acquire_outside_ready_is_refused_with_a_message(ca, ioc):
    ca.put(ioc.pv("duration"), 30.0)
    numid = ca.get(ioc.pv("numid"))
    ca.put(ioc.pv("acquire"), 1)
    ca.wait_for(ioc.pv("state"), lambda state: state == "ACQUIRE", what="ACQUIRE")
    assert ca.get(ioc.pv("acquire")) == 1
    ca.put(ioc.pv("acquire"), 1)
    text = ca.wait_for(ioc.pv("error_text"), bool, what="a refusal message", text=True)
    assert f"{ioc.prefix}acquire=1 refused" in text and "ACQUIRE" in text
    assert ca.get(ioc.pv("error")).startswith(ioc.prefix)
    assert ca.get(ioc.pv("state")) == "ACQUIRE"
    ca.put(ioc.pv("cancel"), 1)
    ca.wait_for(ioc.pv("acquire"), lambda value: value == 0, what="acquire falls after cancel")
    assert ca.get(ioc.pv("state")) == "READY"
    assert ca.get(ioc.pv("cancel")) == 0
    assert ca.get(ioc.pv("numid")) == numid  # a cancelled series is not published
    ca.put(ioc.pv("duration"), 0.0)


def test_bad_duration_is_refused(ca, ioc):
    ca.put(ioc.pv("duration"), 0.25)
    ca.put(ioc.pv("duration"), -1.0)
    assert ca.get(ioc.pv("duration")) == 0.25
    text = ca.wait_for(ioc.pv("error_text"), lambda text: "duration" in text and text,
                       what="a refusal message", text=True)
    assert "-1.0" in text and ">= 0" in text
    ca.put(ioc.pv("duration"), 0.0)


def test_channel_parameters_are_written_to_the_device(ca, ioc):
    ca.put(ioc.pv("ch0:enerj"), 7.5)
    ca.wait_for(ioc.pv("ch0:enerj"), lambda value: value == 7.5, what="enerj readback")
    assert ca.get(ioc.pv("ch1:enerj")) == pytest.approx(3.14)
    assert ca.get(ioc.pv("state")) == "READY"
    assert "ch0:enerj" in ioc.wait_for_line('msg="Channel parameter"')


def test_clear_outside_error_changes_nothing(ca, ioc):
    ca.put(ioc.pv("clear"), 1)
    ca.put(ioc.pv("clear"), 0)
    assert ca.get(ioc.pv("state")) == "READY"
    acquire_series(ca, ioc)


def test_ca_monitor_sees_every_series(ca, ioc):
    # an image first: caproto takes a zero-length update (an empty waveform) for the
    # confirmation of a cancelled subscription and would never deliver the initial value
    acquire_series(ca, ioc)
    numids = Collector()
    images = Collector()
    numid_subscription = ca.subscribe(ioc.pv("numid"),
                                      lambda response: numids.append(int(response.data[0])))
    image_subscription = ca.subscribe(ioc.pv("ch1:image"),
                                      lambda response: images.append(len(response.data)))
    try:
        numids.wait_for(bool, what="initial monitor updates (numid)")
        images.wait_for(bool, what="initial monitor updates (ch1:image)")
        published = [acquire_series(ca, ioc) for _ in range(3)]
        seen_numids = numids.wait_for(lambda seen: seen[-1] == published[-1],
                                      what="the last numid update")
        seen_images = images.snapshot()
        assert seen_numids[-3:] == published
        assert len(seen_images) >= 4 and set(seen_images[-3:]) == {NUM_IMAGES * WIDTH * HEIGHT}
    finally:
        numid_subscription.clear()
        image_subscription.clear()


def test_pva_serves_the_same_records(pva, ioc):
    assert pva.get(ioc.pv("state")) == "READY"
    before = int(pva.get(ioc.pv("numid")))
    pva.put(ioc.pv("duration"), 0.0)
    pva.put(ioc.pv("acquire"), 1)
    wait_for_monitor(pva_monitor(pva, ioc.pv("numid")), lambda numid: int(numid) != before,
                     what="numid over PVA")
    wait_for_monitor(pva_monitor(pva, ioc.pv("state")), lambda state: state == "READY",
                     what="READY over PVA")
    image = pva.get(ioc.pv("ch0:image"))
    assert image.dtype == np.float64 and image.shape == (NUM_IMAGES * WIDTH * HEIGHT,)
    assert pva.get(ioc.pv("ch0:asize1")) == WIDTH


def test_sigterm_stops_the_ioc_with_exit_code_zero():
    with DetectorProcess({"DISSSIM_CHIP_SIZE": "4:4"}) as process:
        code = process.stop()
    assert code == 0
    assert 'msg="IOC stopped on request"' in process.output


@pytest.mark.parametrize("protocol", ["ca", "pva"])
def test_view_saves_the_latest_frames(ioc, ca, protocol, tmp_path):
    import os
    import subprocess
    import sys

    from .ioc_process import ROOT

    acquire_series(ca, ioc)
    target = tmp_path / f"frame-{protocol}.png"
    result = subprocess.run(
        [sys.executable, "-m", "pvflow", "view", ioc.prefix, "--protocol", protocol,
         "--save", str(target)],
        env={**os.environ, **ioc.epics_env, "MPLBACKEND": "Agg"}, capture_output=True,
        text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert target.stat().st_size > 1000 and target.read_bytes()[:4] == b"\x89PNG"


def test_pvflow_context_drives_the_ioc(ioc):
    from .clients import patched_environ

    try:
        from pvflow import Context
    except ImportError:
        pytest.skip("pvflow.Context is not available")
    with patched_environ(ioc.epics_env):
        context = Context()
    try:
        context.put(ioc.pv("duration"), 0.0, wait=True)
        before = context.get(ioc.pv("numid"))
        context.put(ioc.pv("acquire"), 1, wait=True)
        wait_for_monitor(pvflow_monitor(context, ioc.pv("numid")),
                         lambda numid: numid != before, what="numid via pvflow")
        wait_for_monitor(pvflow_monitor(context, ioc.pv("state")),
                         lambda state: state == "READY", what="READY via pvflow")
        image = np.asarray(context.get(ioc.pv("ch0:image")))
        assert image.size == NUM_IMAGES * WIDTH * HEIGHT
        assert context.get(ioc.pv("ch0:asize2")) == HEIGHT
    finally:
        context.close()
