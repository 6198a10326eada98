"""Every IOC app refuses, at start, a prefix that would make a record name longer than EPICS
allows: one line on stderr naming the variable, exit code 2, no traceback, no warm-up. Bad
characters in a prefix and unknown log levels are refused alike by every app."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pvflow.ioc.detector.config import LONGEST_RECORD_SUFFIX as DETECTOR_LONGEST
from pvflow.ioc.detector.config import DetectorSettings
from pvflow.ioc.flyscan.config import LONGEST_RECORD_SUFFIX as FLYSCAN_LONGEST
from pvflow.ioc.flyscan.config import FlyScanSettings
from pvflow.ioc.framework.settings import MAX_RECORD_NAME, ConfigError, load_settings
from pvflow.ioc.sync.config import LONGEST_RECORD_SUFFIX as SYNC_LONGEST
from pvflow.ioc.sync.config import SyncSettings

from .ioc_process import ROOT

APPS = [("detector", "DISS_EPICS_PREFIX", DETECTOR_LONGEST),
        ("sync", "SYNCSTER_PREFIX", SYNC_LONGEST),
        ("flyscan", "FLYSCAN_PREFIX", FLYSCAN_LONGEST)]


def start(app: str, variable: str, prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pvflow", "ioc", app],
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
                               variable: prefix},
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.parametrize("app, variable, longest", APPS)
@pytest.mark.parametrize("length", [300, "one too many"])
def test_too_long_prefix_is_one_line_and_exit_two(app, variable, longest, length) -> None:
    size = 300 if length == 300 else MAX_RECORD_NAME - len(longest) + 1
    result = start(app, variable, "P" * (size - 1) + ":")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0] and str(MAX_RECORD_NAME) in lines[0]


SETTINGS = [(DetectorSettings, "DISS_EPICS_PREFIX", "DISS_LOG_LEVEL"),
            (SyncSettings, "SYNCSTER_PREFIX", "SYNCSTER_LOG_LEVEL"),
            (FlyScanSettings, "FLYSCAN_PREFIX", "FLYSCAN_LOG_LEVEL")]


@pytest.mark.parametrize("settings_class, prefix_variable, level_variable", SETTINGS)
def test_every_app_checks_prefix_and_log_level_alike(settings_class, prefix_variable,
                                                      level_variable) -> None:
    """One prefix and log-level field (the framework's IocSettings) serves every app."""
    settings = load_settings(settings_class, {prefix_variable: " X: ", level_variable: "WARN"})
    assert (settings.prefix, settings.log_level) == ("X:", "warn")
    with pytest.raises(ConfigError, match=f"{prefix_variable}='X\\$:'.*must not contain"):
        load_settings(settings_class, {prefix_variable: "X$:"})
    with pytest.raises(ConfigError, match=f"{level_variable}='loud': unknown log level"):
        load_settings(settings_class, {level_variable: "loud"})
