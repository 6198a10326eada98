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

- pyepics: its own suite with ``epics`` resolved to pvflow.epics, against a C softIoc loaded
  with its ``Setup/pydebug.db`` and its ``simulator.py`` running on pvflow.epics too (see
  ``pyepics_plugin``). Files in ``PYEPICS_FILES``; what is left out and why is in
  ``PYEPICS_LEFT_OUT`` (and the README).

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
# This checkout's pvflow first, ahead of any installed copy, then the repository (for tests.*)
OWN_PATH = [str(REPOSITORY / "src"), str(REPOSITORY)]

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
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([*OWN_PATH, str(root)])}
    return run_with_one_retry("ophyd", [
        sys.executable, "-m", "pytest", "-c", str(REPOSITORY / "tests/upstream/ophyd.ini"),
        "--rootdir", str(root), "-p", "tests.upstream.ophyd_plugin", str(tests),
        "-m", "not motorsim and not adsim",
        "--ignore", str(tests / "test_bluesky_protocols.py"), "-q"],
        root, environment)  # its test_log writes ophyd.log into the cwd


def run_ophyd_async() -> int:
    root = sdist("ophyd-async")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(OWN_PATH)}
    return run_with_one_retry("ophyd-async", [
        sys.executable, "-m", "pytest", "-p", "tests.upstream.ophyd_async_plugin",
        "tests/system_tests/epics/core", "-k", f"not ({AIOCA_SPECIFIC})", "-q",
        "--timeout", "60"], root, environment)


# The type-conversion files switch ``epics.ca.HAS_NUMPY`` off for good (pyepics runs each file
# in its own process): they go last.
PYEPICS_FILES = (
    "test_pv_unittests.py", "test_pv_callback.py", "test_pv_disconnect.py",
    "test_pv_initcallbacks.py", "test_pvsubarray.py", "test_threading.py",
    "test_camonitor_func.py", "test_aodevice.py", "test_multiprocessing.py",
    "test_ca_unittests.py", "test_pv_typeconversion.py", "test_ca_typeconversion.py",
)
PYEPICS_LEFT_OUT = {
    "test_ca_unittests.py::test_Array0": "wants a ctypes.Array for as_numpy=False; pvflow "
                                         "gives a list (there are no C buffers to hand out)",
    "test_ca_subscribe.py": "create_subscription on one PV with a fixed 10 s wait; the same "
                            "calls are covered by test_ca_unittests' subscription tests",
    "test_cathread.py": "13 s of fixed waits testing libca context attach/detach, which are "
                        "accepted no-ops here (one thread-safe Context per process)",
    "test_ca_clearcache.py": "re-runs itself as `python test_ca_clearcache.py`, a fresh "
                             "interpreter where `import epics` means pyepics",
}


def run_pyepics() -> int:
    root = sdist("pyepics") / "tests"
    deselected = [argument for test in PYEPICS_LEFT_OUT if "::" in test
                  for argument in ("--deselect", test)]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(OWN_PATH)}
    return run_with_one_retry("pyepics", [
        sys.executable, "-m", "pytest", "-c", str(REPOSITORY / "tests/upstream/pyepics.ini"),
        "--rootdir", str(root), "-p", "tests.upstream.pyepics_plugin", *PYEPICS_FILES,
        *deselected, "-q"], root, environment)  # test_aodevice writes into the cwd


def main() -> None:
    suites = (("ophyd", run_ophyd), ("ophyd-async", run_ophyd_async), ("pyepics", run_pyepics))
    failures = [name for name, run in suites if run() != 0]
    if failures:
        sys.exit(f"upstream suites failed on pvflow: {', '.join(failures)}")


if __name__ == "__main__":
    main()
