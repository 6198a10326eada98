"""The Eiger backend against the protocol-level simulator: modes, compression, faults, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from pvflow.ioc.detector.backends.eiger.backend import SeriesOverdue
from pvflow.ioc.detector.backends.eiger.simplon import SimplonError
from pvflow.ioc.detector.backends.eiger.sim import sim_image
from pvflow.ioc.detector.events import (
    CancelDataEvent,
    ChannelStateEvent,
    EndDataEvent,
    ImageDataEvent,
    StartDataEvent,
)
from pvflow.ioc.framework.settings import ConfigError
from tests.ioc.eiger.rig import SIZE, Rig

pytestmark = pytest.mark.timeout(60)


def run(scenario: Callable[[Rig], Awaitable[Any]], env: dict[str, str] | None = None,
        **simulator: Any) -> Any:
    async def main() -> Any:
        async with Rig(env, **simulator) as rig:
            return await scenario(rig)
    return asyncio.run(main())


def expected(counter: int, channel: int = 0) -> np.ndarray:
    """What the backend must hand on: the simulator's image as (width, height)."""
    return sim_image(counter, channel, SIZE, np.dtype("uint16")).T


async def acquired(rig: Rig, duration: float) -> list[Any]:
    assert rig.backend is not None
    await rig.backend.acquire(duration)
    return rig.drained()


def series_kinds(events: list[Any]) -> list[str]:
    return [type(event).__name__ for event in events
            if isinstance(event, (StartDataEvent, ImageDataEvent, EndDataEvent,
                                  CancelDataEvent))]


@pytest.mark.parametrize("compression", ["bslz4", "lz4", "none"])
def test_snapshot_series_is_decoded_pixel_for_pixel(compression: str) -> None:
    async def scenario(rig: Rig) -> None:
        rig.simulator.config["detector"]["compression"] = compression
        assert rig.backend is not None
        config = rig.backend.config()
        assert config is not None and [c.label for c in config.channels] == ["threshold_1"]
        assert config.image_size == SIZE and config.dtype == "uint16"
        assert config.num_images == 1
        for counter in range(2):
            events = await acquired(rig, 0.02)
            assert series_kinds(events) == ["StartDataEvent", "ImageDataEvent", "EndDataEvent"]
            image = events[1].images["threshold_1"]
            np.testing.assert_array_equal(image, expected(counter))
            assert events[0].numid == counter + 1  # the detector's series id
        detector = rig.simulator.config["detector"]
        assert detector["trigger_mode"] == "ints" and detector["count_time"] == 0.02
        assert rig.simulator.state == "idle"  # disarmed
    run(scenario)


def test_double_mode_two_gated_images_per_trigger_on_two_thresholds() -> None:
    env = {"EIGER_DEVICE_MODE": "double", "EIGER_GATING_FREQUENCY": "1000",
           "EIGER_X2_THRESHOLD1_ENERGY": "6000", "EIGER_X2_THRESHOLD2_ENERGY": "12000"}

    async def scenario(rig: Rig) -> None:
        assert rig.backend is not None
        config = rig.backend.config()
        assert config is not None and config.num_images == 2
        assert {c.label: dict(c.meta) for c in config.channels} == {
            "threshold_1": {"threshold_energy": 6000.0},
            "threshold_2": {"threshold_energy": 12000.0}}
        events = await acquired(rig, 0.04)
        assert series_kinds(events) == ["StartDataEvent", "ImageDataEvent", "ImageDataEvent",
                                        "EndDataEvent"]
        for index, event in enumerate(events[1:3]):
            assert event.index == index
            for channel, name in enumerate(("threshold_1", "threshold_2")):
                np.testing.assert_array_equal(event.images[name], expected(index, channel))
        detector = rig.simulator.config["detector"]
        assert (detector["trigger_mode"], detector["extg_mode"], detector["nimages"],
                detector["nexpi"], detector["threshold/2/mode"]) == ("extg", "double", 2, 20,
                                                                     "enabled")
    run(scenario, env, gate_frequency=1000.0)


def test_single_mode_turns_duration_into_gate_pulses() -> None:
    async def scenario(rig: Rig) -> None:
        events = await acquired(rig, 0.05)
        assert series_kinds(events) == ["StartDataEvent", "ImageDataEvent", "EndDataEvent"]
        detector = rig.simulator.config["detector"]
        assert (detector["extg_mode"], detector["nimages"], detector["nexpi"]) == ("single", 1,
                                                                                  100)
        assert events[1].duration == pytest.approx(0.05)  # the detector's real_time
    run(scenario, {"EIGER_DEVICE_MODE": "single", "EIGER_GATING_FREQUENCY": "2000"},
        gate_frequency=2000.0)


@pytest.mark.parametrize("mode", ["snapshot", "single"])
def test_cancel_ends_the_series_with_a_cancel_event(mode: str) -> None:
    async def scenario(rig: Rig) -> None:
        assert rig.backend is not None
        acquisition = asyncio.ensure_future(rig.backend.acquire(60.0))
        start = await rig.next_event()
        assert isinstance(start, StartDataEvent)
        await rig.backend.cancel()
        await asyncio.wait_for(acquisition, 10)
        assert series_kinds(rig.drained()) == ["CancelDataEvent"]
        assert rig.simulator.state == "idle"  # aborted on the detector too
        events = await acquired(rig, 0.01) if mode == "snapshot" else []
        assert series_kinds(events) == (["StartDataEvent", "ImageDataEvent", "EndDataEvent"]
                                        if mode == "snapshot" else [])
    run(scenario, {"EIGER_DEVICE_MODE": mode})


def test_missing_gate_makes_the_series_overdue_naming_it() -> None:
    async def scenario(rig: Rig) -> None:
        rig.simulator.inject(no_gate=True)
        with pytest.raises(SeriesOverdue, match=r"series 1 \([0-9a-f-]{36}\): image 1 of 1 "
                                                r"overdue, not received 0.3 s"):
            await acquired(rig, 0.01)
        assert rig.simulator.state == "idle"  # the void series was aborted
    run(scenario, {"EIGER_DEVICE_MODE": "single", "EIGER_IMAGE_OVERDUE": "0.3"})


def test_late_image_within_the_overdue_time_is_fine_beyond_it_is_an_error() -> None:
    async def scenario(rig: Rig) -> None:
        rig.simulator.inject(image_delay=0.2)
        assert series_kinds(await acquired(rig, 0.01))[-1] == "EndDataEvent"
        rig.simulator.inject(image_delay=3.0)
        with pytest.raises(SeriesOverdue, match="series 2"):
            await acquired(rig, 0.01)
    run(scenario, {"EIGER_IMAGE_OVERDUE": "1.5"})


def test_dropped_image_is_named() -> None:
    async def scenario(rig: Rig) -> None:
        rig.simulator.inject(drop_image=0)
        with pytest.raises(RuntimeError, match="image 1 arrived where image 0 was due"):
            await acquired(rig, 0.02)
    run(scenario, {"EIGER_DEVICE_MODE": "double", "EIGER_GATING_FREQUENCY": "1000"},
        gate_frequency=1000.0)


def test_corrupt_stream_message_fails_the_series_with_the_reason() -> None:
    async def scenario(rig: Rig) -> None:
        rig.simulator.inject(corrupt_image=0)
        with pytest.raises(RuntimeError, match="series 1: bad stream message: undecodable"):
            await acquired(rig, 0.01)
        rig.simulator.inject(corrupt_image=None)
        assert series_kinds(await acquired(rig, 0.01))[-1] == "EndDataEvent"
    run(scenario)


def test_http_error_names_the_request_and_the_next_acquisition_works() -> None:
    async def scenario(rig: Rig) -> None:
        rig.simulator.inject(http_errors=1, http_errors_on="command/arm")
        with pytest.raises(SimplonError, match=r"PUT http://127.0.0.1:\d+/detector/api/1.8.0/"
                                               r"command/arm: HTTP 500 simulated"):
            await acquired(rig, 0.01)
        assert series_kinds(await acquired(rig, 0.01))[-1] == "EndDataEvent"
    run(scenario)


def test_configuration_changed_by_another_client_is_an_error_until_clear() -> None:
    async def scenario(rig: Rig) -> None:
        assert rig.backend is not None
        await rig.http("PUT", "/detector/api/1.8.0/config/trigger_mode", {"value": "exts"})
        with pytest.raises(RuntimeError, match="detector configuration changed: detector/config/"
                                               "trigger_mode is 'exts', the IOC set 'ints'"):
            await acquired(rig, 0.01)
        assert rig.simulator.arms == 0  # checked before arming
        await rig.backend.clear()
        assert series_kinds(await acquired(rig, 0.01))[-1] == "EndDataEvent"
    run(scenario)


def test_reboot_unreachable_then_clear_restores_the_setup() -> None:
    async def scenario(rig: Rig) -> None:
        assert rig.backend is not None
        await rig.simulator.power_off()
        with pytest.raises(SimplonError, match="unreachable"):
            await acquired(rig, 0.01)
        await rig.simulator.power_on()
        assert rig.simulator.state == "na"
        with pytest.raises(RuntimeError, match="detector configuration changed"):
            await acquired(rig, 0.01)
        await rig.backend.clear()
        assert rig.simulator.state == "idle"
        assert rig.simulator.config["stream"]["format"] == "cbor"
        assert series_kinds(await acquired(rig, 0.01))[-1] == "EndDataEvent"
    run(scenario, {"EIGER_DEVICE_MODE": "snapshot"})


def test_threshold_energy_is_written_read_back_and_kept() -> None:
    async def scenario(rig: Rig) -> None:
        assert rig.backend is not None
        await rig.backend.adjust_channel("threshold_1", threshold_energy=8200)
        event = await rig.next_event()
        assert isinstance(event, ChannelStateEvent)
        assert (event.channel, dict(event.meta)) == ("threshold_1", {"threshold_energy": 8200.0})
        assert rig.simulator.config["detector"]["threshold/1/energy"] == 8200.0
        assert series_kinds(await acquired(rig, 0.01))[-1] == "EndDataEvent"  # still our setup
        with pytest.raises(ValueError, match="unknown channel 'threshold_2'"):
            await rig.backend.adjust_channel("threshold_2", threshold_energy=1)
        with pytest.raises(ValueError, match=r"no parameters \['gain'\]"):
            await rig.backend.adjust_channel("threshold_1", gain=1)
    run(scenario)


def test_api_version_mismatch_is_a_configuration_error() -> None:
    async def scenario(rig: Rig) -> None:
        assert rig.backend is not None
        with pytest.raises(ConfigError, match="EIGER_API_VERSION='1.6.0': the detector at "
                                              r"http://127.0.0.1:\d+ serves API 1.8.0"):
            await rig.backend.initialize()

    async def main() -> None:
        async with Rig({"EIGER_API_VERSION": "1.6.0"}, initialize=False) as rig:
            await scenario(rig)
    asyncio.run(main())


@pytest.mark.parametrize("variable, value, message", [
    ("EIGER_DEVICE_MODE", "edge", "EIGER_DEVICE_MODE='edge': Input should be 'snapshot', "
                                  "'single' or 'double'"),
    ("EIGER_API_PORT", "0", "EIGER_API_PORT='0'"),
    ("EIGER_IMAGE_OVERDUE", "-1", "EIGER_IMAGE_OVERDUE='-1'"),
])
def test_bad_variables_are_named(variable: str, value: str, message: str) -> None:
    from pvflow.ioc.detector.backends.eiger import EigerDetector

    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        EigerDetector.check_environment({variable: value})


def test_overdue_defaults_follow_the_mode() -> None:
    from pvflow.ioc.detector.backends.eiger.config import EigerSettings
    from pvflow.ioc.framework.settings import load_settings

    def overdue(env: dict[str, str]) -> float:
        return load_settings(EigerSettings, env).overdue

    assert overdue({}) == 5.0
    assert overdue({"EIGER_DEVICE_MODE": "double"}) == 300.0
    assert overdue({"EIGER_IMAGE_OVERDUE": "0"}) == float("inf")
