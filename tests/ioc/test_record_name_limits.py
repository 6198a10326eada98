"""Every IOC app refuses, at start, a prefix that would make a record name longer than EPICS
allows: one line on stderr naming the variable, exit code 2, no traceback, no warm-up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pvflow.ioc.detector.config import LONGEST_RECORD_SUFFIX as DETECTOR_LONGEST
from pvflow.ioc.flyscan.config import LONGEST_RECORD_SUFFIX as FLYSCAN_LONGEST
from pvflow.ioc.framework.records import MAX_RECORD_NAME
from pvflow.ioc.sync.config import LONGEST_RECORD_SUFFIX as SYNC_LONGEST

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
