"""Backend faults end in ERROR (cleared by `clear`) or FAIL (non-zero exit), never a hang."""

from __future__ import annotations

import pytest

from .clients import CaClient
from .detector_process import DetectorProcess, acquire_series, instant_client

BACKEND = "tests.ioc.faulty_backend:FaultyDetector"


@pytest.fixture(scope="module")
def ioc():
    with DetectorProcess({"DISS_DEVICE_BACKEND": BACKEND, "DISSSIM_CHIP_SIZE": "8:4",
                          "DISSSIM_NUM_IMAGES": "3", "DISSSIM_CHANNELS": "a:b",
                          "DISSSIM_CHANNEL_PARAMS": "enerj=1:mode=0:clears=0"}) as process:
        yield process


@pytest.fixture(scope="module")
def ca(ioc):
    with instant_client(ioc) as client:
        yield client


def fault(ca: CaClient, ioc: DetectorProcess, mode: int) -> str:
    """Acquire with fault ``mode`` armed; return the error text once in ERROR."""
    ca.put(ioc.pv("a:mode"), mode)
    ca.wait_for(ioc.pv("a:mode"), lambda value: value == mode, what="mode readback")
    ca.put(ioc.pv("acquire"), 1)
    ca.wait_for(ioc.pv("state"), lambda state: state == "ERROR", what="ERROR")
    ca.put(ioc.pv("a:mode"), 0)
    return ca.text(ioc.pv("error_text"))


def clear(ca: CaClient, ioc: DetectorProcess, value: int) -> None:
    ca.put(ioc.pv("clear"), value)
    ca.wait_for(ioc.pv("state"), lambda state: state == "READY", what="READY after clear")
    assert ca.get(ioc.pv("error")) == ""
    assert ca.get(ioc.pv("clear")) == 0


def test_too_few_images_is_an_error_naming_the_counts(ca, ioc):
    text = fault(ca, ioc, 1)
    assert "too few images" in text and "2 of 3" in text
    assert ca.get(ioc.pv("error")) == text[:38] + "~"
    # acquire in ERROR is refused, not kept
    ca.put(ioc.pv("acquire"), 1)
    ca.wait_for(ioc.pv("error_text"), lambda text: "refused" in text, what="refusal",
                text=True)
    assert ca.get(ioc.pv("acquire")) == 0
    assert ca.get(ioc.pv("state")) == "ERROR"
    clear(ca, ioc, 0)


def test_too_many_images_is_an_error_naming_the_counts(ca, ioc):
    text = fault(ca, ioc, 2)
    assert "too many images" in text and "image 4 of a series of 3" in text
    clear(ca, ioc, 1)


def test_backend_exception_is_an_error(ca, ioc):
    text = fault(ca, ioc, 3)
    assert "backend Acquire failed: RuntimeError: simulated acquisition crash" in text
    clear(ca, ioc, 1)


def test_acquisitions_work_again_after_clear(ca, ioc):
    acquire_series(ca, ioc)


def test_errors_a_slow_clear_is_clearing_are_not_new_ones(ca, ioc):
    """READY at once after clear, as in Diss; the device's error, still reported while its
    clear runs, must not send the IOC back to ERROR."""
    text = fault(ca, ioc, 5)
    assert "simulated device error" in text
    clears = ca.get(ioc.pv("a:clears"))
    clear(ca, ioc, 1)
    ca.wait_for(ioc.pv("a:clears"), lambda value: value == clears + 1,
                what="the end of the device's clear")
    assert ca.get(ioc.pv("state")) == "READY", ca.text(ioc.pv("error_text"))
    acquire_series(ca, ioc)


def test_backend_failure_is_fail_and_a_non_zero_exit(ca, ioc):
    ca.put(ioc.pv("a:mode"), 4)
    ca.wait_for(ioc.pv("a:mode"), lambda value: value == 4, what="mode readback")
    ca.put(ioc.pv("acquire"), 1)
    assert ioc.wait_exit(60) == 1
    line = ioc.wait_for_line('msg="IOC exits in FAIL"')
    assert "simulated detector loss" in line and "code=1" in line
