"""Start-up: configuration errors, failures before READY, auto-acquire."""

from __future__ import annotations

import subprocess
import sys

import pytest

from .clients import CaClient
from .detector_process import DetectorProcess
from .ioc_process import ROOT


@pytest.mark.parametrize("variable, value, says", [
    ("DISS_LOOP_PERIOD", "fast", "DISS_LOOP_PERIOD='fast'"),
    ("DISS_AUTO_ACQUIRE", "sometimes", "DISS_AUTO_ACQUIRE='sometimes'"),
    ("DISS_LOG_LEVEL", "loud", "DISS_LOG_LEVEL='loud'"),
    ("DISS_DEVICE_BACKEND", "nosuch", "unknown backend 'nosuch'"),
    ("DISS_DEVICE_BACKEND", "no_module_here:Thing", "cannot import backend module"),
    ("DISSSIM_CHIP_SIZE", "128", "DISSSIM_CHIP_SIZE='128'"),
])
def test_bad_configuration_is_one_line_naming_the_variable(variable, value, says):
    result = subprocess.run([sys.executable, "-m", "pvflow", "ioc", "detector"],
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                                 variable: value},
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert says in lines[0] and variable in lines[0]


def test_backend_crash_before_ready_is_fail_with_exit_code_one():
    process = DetectorProcess({"DISS_DEVICE_BACKEND": "tests.ioc.faulty_backend:FaultyDetector",
                               "FAULTY_INIT": "raise"}).start(wait=False)
    try:
        assert process.wait_exit(120) == 1
    finally:
        process.stop()
    line = process.wait_for_line('msg="IOC failed to start"')
    assert "simulated initialisation crash" in line
    assert 'msg="IOC running"' not in process.output


def test_auto_acquire_repeats_acquisitions():
    with DetectorProcess({"DISS_AUTO_ACQUIRE": "0.01", "DISSSIM_NUM_IMAGES": "1",
                          "DISSSIM_CHIP_SIZE": "8:8", "DISSSIM_CHANNELS": "only"}) as process:
        ca = CaClient(process.epics_env)
        try:
            first = ca.wait_for(process.pv("numid"), lambda numid: numid >= 0, what="a first series")
            ca.wait_for(process.pv("numid"), lambda numid: numid >= first + 20, what="more series")
            assert 0 <= ca.get(process.pv("ssqcnt")) < 16
            # a client acquire while the IOC acquires by itself is refused, not queued
            ca.put(process.pv("duration"), 0.0)
            ca.put(process.pv("acquire"), 1)
            assert ca.get(process.pv("state")) in {"READY", "ACQUIRE", "PROCESS"}
        finally:
            ca.close()
