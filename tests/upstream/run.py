"""``python -m tests.upstream.run``: ophyd's and ophyd-async's own suites on pvflow.

- ophyd: its whole suite except the tests that need IOCs we cannot run here (``motorsim``
  and ``adsim``: a real motor record and ADSimDetector in docker; our own motor test covers
  EpicsMotor) and ``test_bluesky_protocols.py`` (it type-checks ophyd with mypy, which fails
  on an installed ophyd without ``py.typed`` whatever the control layer). That includes the
  IOC-backed ``test_signal``, ``test_pvpositioner``, ``test_scaler`` and ``test_mca``.
- ophyd-async: ``tests/system_tests/epics/core`` (starts its own CA+PVA IOC), its ``ca`` and
  ``pva`` cases alike on pvflow, minus four tests that inspect aioca itself: the backend must
  be an aioca ``CaSignalBackend`` or its subscription an ``aioca.Subscription``. None
  inspects p4p's objects, so no pvAccess test is left out.

Each runs in its own pytest process; the exit status is non-zero when either fails. A suite
that fails is run once more on its failed tests only, and says so: some upstream fixtures
give an IOC 3 s to start (ophyd-async's pytest-timeout marks, caproto's ioc fixture), which a
loaded 2-core machine sometimes misses; a real failure fails twice.
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


def run_with_one_retry(name: str, command: list[str], root: Path,
                       environment: dict[str, str]) -> int:
    code = subprocess.run(command, cwd=root, env=environment).returncode
    if code == 0:
        return 0
    print(f"\n*** {name}: re-running only the tests that failed, once ***\n", flush=True)
    return subprocess.run([*command, "--last-failed"], cwd=root, env=environment).returncode


def run_ophyd() -> int:
    root = sdist("ophyd")
    tests = root / "ophyd" / "tests"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(REPOSITORY)])}
    return run_with_one_retry("ophyd", [
        sys.executable, "-m", "pytest", "-c", str(REPOSITORY / "tests/upstream/ophyd.ini"),
        "--rootdir", str(root), "-p", "tests.upstream.ophyd_plugin", str(tests),
        "-m", "not motorsim and not adsim",
        "--ignore", str(tests / "test_bluesky_protocols.py"), "-q"],
        root, environment)  # its test_log writes ophyd.log into the cwd


def run_ophyd_async() -> int:
    root = sdist("ophyd-async")
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    return run_with_one_retry("ophyd-async", [
        sys.executable, "-m", "pytest", "-p", "tests.upstream.ophyd_async_plugin",
        "tests/system_tests/epics/core", "-k", f"not ({AIOCA_SPECIFIC})", "-q",
        "--timeout", "60"], root, environment)


def main() -> None:
    failures = [name for name, run in (("ophyd", run_ophyd), ("ophyd-async", run_ophyd_async))
                if run() != 0]
    if failures:
        sys.exit(f"upstream suites failed on pvflow: {', '.join(failures)}")


if __name__ == "__main__":
    main()
