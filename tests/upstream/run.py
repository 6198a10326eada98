"""``python -m tests.upstream.run``: ophyd's and ophyd-async's own suites on pvflow.

- ophyd: its whole suite except the tests that need IOCs we cannot run here (``motorsim``
  and ``adsim``: a real motor record and ADSimDetector in docker; our own motor test covers
  EpicsMotor) and ``test_bluesky_protocols.py`` (it type-checks ophyd with mypy, which fails
  on an installed ophyd without ``py.typed`` whatever the control layer). That includes the
  IOC-backed ``test_signal``, ``test_pvpositioner``, ``test_scaler`` and ``test_mca``.
- ophyd-async: ``tests/system_tests/epics/core`` (starts its own CA+PVA IOC), minus four tests
  that inspect aioca itself: the backend must be an aioca ``CaSignalBackend`` or its
  subscription an ``aioca.Subscription``.

Each runs in its own pytest process; the exit status is non-zero when either fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.upstream.sdists import sdist

REPOSITORY = Path(__file__).resolve().parents[2]

# A -k expression: keywords match substrings, and test_signal_helpers_explicit_read_timeout
# (transport-independent) must stay selected.
AIOCA_SPECIFIC = ("(test_signal_helpers and not test_signal_helpers_explicit_read_timeout)"
                  " or test_all_updates_settable_with_environment_variable"
                  " or test_all_updates_defaults_to_true")


def run_ophyd() -> int:
    root = sdist("ophyd")
    tests = root / "ophyd" / "tests"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(REPOSITORY)])}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(REPOSITORY / "tests/upstream/ophyd.ini"),
         "--rootdir", str(root), "-p", "tests.upstream.ophyd_plugin", str(tests),
         "-m", "not motorsim and not adsim",
         "--ignore", str(tests / "test_bluesky_protocols.py"), "-q"],
        cwd=root, env=environment).returncode  # its test_log writes ophyd.log into the cwd


def run_ophyd_async() -> int:
    root = sdist("ophyd-async")
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
         "-p", "tests.upstream.ophyd_async_plugin", "tests/system_tests/epics/core",
         "-k", f"not ({AIOCA_SPECIFIC})", "-q", "--timeout", "60"],
        cwd=root, env=environment).returncode


def main() -> None:
    failures = [name for name, run in (("ophyd", run_ophyd), ("ophyd-async", run_ophyd_async))
                if run() != 0]
    if failures:
        sys.exit(f"upstream suites failed on pvflow: {', '.join(failures)}")


if __name__ == "__main__":
    main()
