"""The detector controller's bookkeeping: acquisition deadlines and series tracking.

The deadlines take their clock as an argument, so these tests move time by hand instead of
sleeping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pvflow.ioc.detector.acquire_deadlines import BACKEND_OVERDUE_GRACE, AcquireDeadlines
from pvflow.ioc.detector.events import ChannelConfig, DeviceConfig, ImageDataEvent, StartDataEvent
from pvflow.ioc.detector.series import SeriesError
from pvflow.ioc.detector.series_tracker import SSQCNT_MODULO, SeriesTracker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_one_acquisition_may_be_pending_and_it_must_start_within_the_overdue_time() -> None:
    clock = Clock()
    deadlines = AcquireDeadlines(overdue=2.0, clock=clock)
    assert deadlines.reserve() and not deadlines.reserve()
    clock.now += 2.0
    assert deadlines.never_started() is None
    clock.now += 0.1
    assert "never started" in (deadlines.never_started() or "")
    deadlines.release()
    assert deadlines.never_started() is None and deadlines.reserve()


def test_the_series_deadline_is_the_exposure_plus_the_longer_margin_reported_once() -> None:
    clock = Clock()
    deadlines = AcquireDeadlines(overdue=2.0, clock=clock)
    deadlines.arm(exposure=10.0, backend_overdue=30.0)  # the backend waits longer: it wins
    clock.now += 10.0 + 30.0 + BACKEND_OVERDUE_GRACE
    assert deadlines.never_ended("s1") is None
    clock.now += 0.1
    assert "no end of series s1" in (deadlines.never_ended("s1") or "")
    assert deadlines.never_ended("s1") is None


@pytest.mark.parametrize(("overdue", "backend_overdue"), [(0.0, None), (2.0, math.inf)])
def test_no_deadline_when_switched_off_or_the_backend_waits_forever(
        overdue: float, backend_overdue: float | None) -> None:
    clock = Clock()
    deadlines = AcquireDeadlines(overdue=overdue, clock=clock)
    deadlines.reserve()
    deadlines.arm(exposure=1.0, backend_overdue=backend_overdue)
    clock.now += 1e6
    assert deadlines.never_ended("s1") is None
    assert overdue or deadlines.never_started() is None


CONFIG = DeviceConfig(channels=(ChannelConfig("a"),), num_images=1, image_size=(2, 3),
                      dtype="uint16")


def _start(uuid: str) -> StartDataEvent:
    return StartDataEvent(uuid=uuid, numid=1)


def test_a_voided_series_is_ignored_and_the_counter_wraps() -> None:
    tracker = SeriesTracker()
    counts = []
    for number in range(SSQCNT_MODULO + 1):
        tracker.start(CONFIG, _start(f"s{number}"))
        assert tracker.running is not None
        counts.append(tracker.running.series.ssqcnt)
        tracker.void()
    assert counts[0] == 0 and counts[-1] == 0 and counts[-2] == SSQCNT_MODULO - 1
    assert tracker.is_ignored("s3") and tracker.running is None


def test_a_finished_series_is_handed_over_once_and_an_incomplete_one_raises() -> None:
    tracker = SeriesTracker()
    tracker.start(CONFIG, _start("s1"))
    with pytest.raises(SeriesError, match="too few images"):
        tracker.finish()
    assert tracker.running_uuid == "s1"
    image = np.arange(6, dtype=np.uint16).reshape(2, 3)
    running = tracker.running
    assert running is not None
    running.add(ImageDataEvent(index=0, series_uuid="s1", start_ts=1.0, duration=0.1,
                               images={"a": image}))
    tracker.finish()
    assert tracker.running is None and tracker.running_uuid == "?"
    np.testing.assert_array_equal(tracker.take_finished().images["a"][0], image)
