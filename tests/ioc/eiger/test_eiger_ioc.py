"""``pvflow ioc detector`` with ``DISS_DEVICE_BACKEND=eiger`` against ``pvflow sim eiger``,
both as processes, driven over CA by caproto as a Diss user would."""

from __future__ import annotations

import json
import sys
import urllib.request
from typing import Any

import numpy as np
import pytest

from pvflow.demo.network import free_port
from pvflow.demo.processes import ServerProcess
from pvflow.ioc.detector.backends.eiger.sim import sim_image
from tests.ioc.clients import CaClient
from tests.ioc.detector_process import DetectorProcess, acquire_series

WIDTH, HEIGHT = 32, 16
pytestmark = pytest.mark.timeout(120)


class SimulatorProcess(ServerProcess):
    def __init__(self) -> None:
        self.api_port, self.stream_port = free_port(), free_port()
        super().__init__([sys.executable, "-m", "pvflow", "sim", "eiger", "--api-port",
                          str(self.api_port), "--stream-port", str(self.stream_port),
                          "--size", f"{WIDTH}x{HEIGHT}"], {}, '"api"', name="eiger simulator",
                         keep_stdin=False)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.api_port}{path}", data=data,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture(scope="module")
def simulator():
    with SimulatorProcess() as process:
        yield process


@pytest.fixture(scope="module")
def ioc(simulator):
    env = {"DISS_DEVICE_BACKEND": "eiger500k", "EIGER_DEVICE_HOST": "127.0.0.1",
           "EIGER_API_PORT": str(simulator.api_port),
           "EIGER_STREAM_PORT": str(simulator.stream_port),
           "EIGER_X2_THRESHOLD2_ENERGY": "13000", "DISS_LOOP_PERIOD": "0.05"}
    with DetectorProcess(env) as process:
        yield process


def test_snapshot_images_reach_ca_pixel_for_pixel(ca, ioc, simulator):
    ca.put(ioc.pv("duration"), 0.02)
    numid = acquire_series(ca, ioc)
    status = simulator.request("GET", "/sim/status")
    assert numid == status["series_id"]  # the detector's own series number
    counter = status["images"] - 1
    for channel, name in enumerate(("threshold_1", "threshold_2")):
        image = np.asarray(ca.get(ioc.pv(f"{name}:image")))
        assert image.size == WIDTH * HEIGHT
        want = sim_image(counter, channel, (WIDTH, HEIGHT), np.dtype("uint16")).T
        np.testing.assert_array_equal(image.reshape(WIDTH, HEIGHT), want)
    assert status["config"]["detector"]["count_time"] == pytest.approx(0.02)


def test_threshold_energy_goes_to_the_detector(ca, ioc, simulator):
    ca.put(ioc.pv("threshold_2:threshold_energy"), 15500.0)
    simulator.wait_for_line("config detector/threshold/2/energy = 15500.0")
    detector = simulator.request("GET", "/sim/status")["config"]["detector"]
    assert detector["threshold/2/energy"] == 15500.0
    assert detector["threshold/2/mode"] == "enabled"


def test_reboot_is_an_error_and_clear_brings_the_detector_back(ca, ioc, simulator):
    simulator.request("POST", "/sim/reboot", {"downtime": 1.0})
    ca.wait_for(ioc.pv("state"), lambda state: state == "ERROR", what="ERROR")
    simulator.wait_for_line("reboot done")
    ca.put(ioc.pv("clear"), 1)
    ca.wait_for(ioc.pv("state"), lambda state: state == "READY", what="READY after clear")
    before = simulator.request("GET", "/sim/status")["arms"]
    acquire_series(ca, ioc)
    status = simulator.request("GET", "/sim/status")
    assert status["arms"] == before + 1
    detector = status["config"]["detector"]
    assert (detector["threshold/2/energy"], detector["trigger_mode"]) == (15500.0, "ints")


def test_missing_gate_is_reported_by_the_backend_naming_the_series():
    """The IOC's generic overdue check (1 s here) gives way to the backend's more specific
    one (2 s), whose error names the detector series. A detector of its own: the stream hands
    each message to one of its clients only."""
    with SimulatorProcess() as simulator:
        env = {"DISS_DEVICE_BACKEND": "eiger", "EIGER_DEVICE_HOST": "127.0.0.1",
               "EIGER_API_PORT": str(simulator.api_port),
               "EIGER_STREAM_PORT": str(simulator.stream_port), "EIGER_DEVICE_MODE": "single",
               "EIGER_IMAGE_OVERDUE": "2", "DISS_ACQUIRE_OVERDUE": "1"}
        with DetectorProcess(env) as ioc:
            ca = CaClient(ioc.epics_env)
            try:
                simulator.request("PUT", "/sim/faults", {"no_gate": True})
                ca.put(ioc.pv("duration"), 0.01)
                ca.put(ioc.pv("acquire"), 1)
                ca.wait_for(ioc.pv("state"), lambda state: state == "ERROR", what="ERROR")
                text = ca.text(ioc.pv("error_text"))
                assert "series 1 (" in text and "image 1 of 1 overdue" in text, text
            finally:
                ca.close()
