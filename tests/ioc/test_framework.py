"""The IOC framework without EPICS: state machine, settings, plugins, logs, series checks."""

from __future__ import annotations

import enum
import io
import logging

import numpy as np
import pytest

from pvflow.ioc.detector.events import (
    ChannelConfig,
    DeviceConfig,
    EndDataEvent,
    ImageDataEvent,
    StartDataEvent,
)
from pvflow.ioc.detector.series import SeriesCollector, SeriesError
from pvflow.ioc.detector.config import DetectorSettings
from pvflow.ioc.framework import (
    ConfigError,
    PluginError,
    StateMachine,
    configure_logging,
    load_plugin,
    load_settings,
    log_event,
    parse_duration_switch,
)


class Light(enum.Enum):
    OFF = 0
    ON = 1
    BROKEN = 2
    DEAD = 3


def machine() -> StateMachine[Light]:
    return StateMachine("light", {Light.OFF: {Light.ON}, Light.ON: {Light.OFF, Light.BROKEN},
                                  Light.BROKEN: {Light.OFF}},
                        initial=Light.OFF, error=Light.BROKEN, fail=Light.DEAD,
                        recover=Light.OFF)


def test_transitions_hooks_and_observers():
    m = machine()
    seen = []
    m.observe(lambda old, new: seen.append((old.name, new.name)))
    m.on_enter(Light.ON, lambda previous: None)
    m.go(Light.ON)
    assert m.state is Light.ON and seen == [("OFF", "ON")]


def test_error_waits_for_clear_then_recovers():
    m = machine()
    m.go(Light.ON)
    m.add_error("bulb flickers")
    assert m.state is Light.BROKEN and m.errors == ["bulb flickers"]
    m.step()
    assert m.state is Light.BROKEN
    m.clear()
    assert m.state is Light.OFF and m.errors == []


def test_error_where_the_table_has_no_error_transition_is_fail():
    m = machine()
    m.add_error("no power")  # OFF -> BROKEN is not in the table
    assert m.failed and m.failure == "no power"


def test_forbidden_transition_and_raising_hook_are_fail():
    m = machine()
    m.go(Light.BROKEN)
    assert m.failed and "OFF -> BROKEN" in (m.failure or "")
    m = machine()
    m.on_step(Light.OFF, lambda: 1 / 0)
    m.step()
    assert m.failed and "ZeroDivisionError" in (m.failure or "")


def test_duration_switch_accepts_diss_words():
    assert parse_duration_switch(None) is None
    for off in ("", "0", "no", "false", "nope", "off"):
        assert parse_duration_switch(off) is None
    assert parse_duration_switch("yes") == 1.0
    assert parse_duration_switch("0.25") == 0.25
    with pytest.raises(ValueError):
        parse_duration_switch("-1")


def test_settings_errors_name_the_variable():
    with pytest.raises(ConfigError, match=r"DISS_LOOP_PERIOD='-1'"):
        load_settings(DetectorSettings, {"DISS_LOOP_PERIOD": "-1"})
    settings = load_settings(DetectorSettings, {"DISS_AUTO_ACQUIRE": "no",
                                                "DISS_EPICS_PREFIX": "A:"})
    assert settings.auto_acquire is None and settings.prefix == "A:"


def test_plugins_by_name_and_module_class():
    builtins = {"sim": "pvflow.ioc.detector.backends.sim:SimDetector"}
    assert load_plugin("sim", builtins=builtins).__name__ == "SimDetector"
    found = load_plugin("tests.ioc.faulty_backend:FaultyDetector", builtins=builtins,
                        required=("acquire",))
    assert found.__name__ == "FaultyDetector"
    with pytest.raises(PluginError, match="unknown backend 'eiger'"):
        load_plugin("eiger", builtins=builtins)
    with pytest.raises(PluginError, match="lacks"):
        load_plugin("collections:OrderedDict", builtins=builtins, required=("acquire",))


def test_log_lines_are_key_value():
    stream = io.StringIO()
    configure_logging("info", stream)
    log_event(logging.getLogger("pvflow.test"), logging.INFO, "Put refused", pv="A:acquire",
              value=1, reason="state is ERROR")
    line = stream.getvalue().strip()
    assert line.endswith('msg="Put refused" pv=A:acquire value=1 reason="state is ERROR"')


def config(count: int = 2) -> DeviceConfig:
    return DeviceConfig(channels=(ChannelConfig("a"), ChannelConfig("b")), num_images=count,
                        image_size=(4, 3), dtype="uint16")


def image_event(start: StartDataEvent, index: int, channels=("a", "b")) -> ImageDataEvent:
    return ImageDataEvent(index, start.uuid, 0.0, 0.0,
                          {c: np.full((4, 3), index, np.uint16) for c in channels})


def test_series_counts_are_checked():
    start = StartDataEvent(7)
    collector = SeriesCollector(config(), start, 0)
    collector.add(image_event(start, 0))
    with pytest.raises(SeriesError, match="too few images: series ended after 1 of 2"):
        collector.finish()
    collector.add(image_event(start, 1))
    with pytest.raises(SeriesError, match="too many images: got image 3 of a series of 2"):
        collector.add(image_event(start, 1))
    series = collector.finish()
    assert series.images["b"].shape == (2, 4, 3) and series.numid == 7
    with pytest.raises(SeriesError, match="missing channels"):
        SeriesCollector(config(), start, 0).add(image_event(start, 0, channels=("a",)))
    assert isinstance(EndDataEvent(start.uuid).series_uuid, str)
