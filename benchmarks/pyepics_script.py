"""``python -m benchmarks.pyepics_script``: a typical pyepics beamline script, timed step by step
on pyepics and on pvflow.epics (the same code, only the import differs), in one run.

The script, in a fresh process per repetition against the benchmark softIoc:

1. connect: ``PV(name)`` for 200 ``ai`` records, then ``wait_for_connection`` on each;
2. read: ``pv.get()`` on each of them;
3. put: ``put(value, wait=True)`` on 10 ``ao`` records (their PVs connected beforehand);
4. callbacks: a callback on one ``ao``, then 1000 puts without wait; timed until the
   callback has seen the last value.

Cells: median seconds over the repetitions, and pvflow.epics / pyepics per step (below 1 is
faster). A full garbage collection runs before the clock starts, in both alike.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import threading
import time

from .fresh_process import run_worker
from .ioc import INPUT_NAMES, OUTPUT_NAMES, BenchServer

LIBRARIES = ("pyepics", "pvflow.epics")
STEPS = ("connect 200", "read 200", "connect+read 200", "put 10 wait=True", "1000 callbacks")
CONNECT_COUNT, PUT_COUNT, CALLBACK_COUNT = 200, 10, 1000
LIMIT_SECONDS = 120.0


def _script(library: str) -> dict[str, float]:
    """Seconds per step of the script on ``library``."""
    if library == "pvflow.epics":
        import pvflow.epics as epics
    else:
        import epics  # type: ignore[no-redef]
    gc.collect()
    times: dict[str, float] = {}
    started = time.perf_counter()
    pvs = [epics.PV(name) for name in INPUT_NAMES[:CONNECT_COUNT]]
    if not all(pv.wait_for_connection(timeout=30) for pv in pvs):
        raise RuntimeError("not every PV connected")
    connected = time.perf_counter()
    values = [pv.get() for pv in pvs]
    read = time.perf_counter()
    if any(value is None for value in values):
        raise RuntimeError("a read failed")
    times.update({"connect 200": connected - started, "read 200": read - connected,
                  "connect+read 200": read - started})

    outputs = [epics.PV(name) for name in OUTPUT_NAMES[:PUT_COUNT]]
    for pv in outputs:
        pv.wait_for_connection(timeout=30)
    started = time.perf_counter()
    for index, pv in enumerate(outputs):
        pv.put(index + 0.5, wait=True)
    times["put 10 wait=True"] = time.perf_counter() - started

    times["1000 callbacks"] = _callbacks(epics.PV(OUTPUT_NAMES[PUT_COUNT]))
    return times


def _callbacks(pv: object) -> float:
    """Seconds from the first of 1000 puts until the callback saw the last value."""
    last = float(CALLBACK_COUNT)
    seen = threading.Event()

    def on_change(value: float | None = None, **ignored: object) -> None:
        if value == last:
            seen.set()

    pv.wait_for_connection(timeout=30)  # type: ignore[attr-defined]
    pv.put(-1.0, wait=True)  # type: ignore[attr-defined]
    pv.add_callback(on_change)  # type: ignore[attr-defined]
    started = time.perf_counter()
    for value in range(1, CALLBACK_COUNT + 1):
        pv.put(float(value))  # type: ignore[attr-defined]
    if not seen.wait(60):
        raise RuntimeError("the callback never saw the last value")
    return time.perf_counter() - started


def _worker(library: str) -> None:
    print(json.dumps(_script(library)))
    sys.stdout.flush()
    os._exit(0)  # skip each library's atexit teardown: not part of the script


def measure(library: str, environment: dict[str, str], repetitions: int
            ) -> dict[str, float | str]:
    """Median seconds per step over fresh processes, or the error of the last failed one."""
    samples: list[dict[str, float]] = []
    failure = ""
    for _ in range(repetitions):
        result, error = run_worker("benchmarks.pyepics_script", [library], environment,
                                   LIMIT_SECONDS)
        if result is None:
            failure = error
        else:
            samples.append(result)
    if not samples:
        return dict.fromkeys(STEPS, failure)
    return {step: statistics.median(sample[step] for sample in samples) for step in STEPS}


def table(results: dict[str, dict[str, float | str]]) -> str:
    lines = ["| step | pyepics | pvflow.epics | pvflow.epics / pyepics |", "|---|---|---|---|"]
    for step in STEPS:
        reference, ours = results["pyepics"][step], results["pvflow.epics"][step]
        ratio = f"{ours / reference:.2f}" if isinstance(ours, float) and \
            isinstance(reference, float) else "-"
        cells = [f"{value * 1000:.1f} ms" if isinstance(value, float) else str(value)
                 for value in (reference, ours)]
        lines.append(f"| {step} | {cells[0]} | {cells[1]} | {ratio} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pyepics_script",
                                     description=__doc__)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--worker", choices=LIBRARIES, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        _worker(arguments.worker)
        return
    with BenchServer() as server:
        environment = {**os.environ, **server.environment}
        results = {library: measure(library, environment, arguments.repetitions)
                   for library in LIBRARIES}
    print(f"\npyepics script on pyepics and on pvflow.epics (median of {arguments.repetitions} "
          f"fresh processes; below 1 is faster)\n")
    print(table(results))


if __name__ == "__main__":
    main()
