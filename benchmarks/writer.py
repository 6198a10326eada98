"""``python -m benchmarks.writer``: does storing documents slow the RunEngine down?

A fly scan of 10 000 points with 50 waveform PVs (plus the time array) runs through the
RunEngine twice per target: once with the target subscribed directly, once behind a
``BackgroundWriter``. Reported: the RunEngine's time for the run (median of the repeats),
their ratio (the writer's goal: at most 1.05, ideally below 1) and how long the writer still
needed after the RunEngine had finished. The RunEngine alone (no subscriber) is the floor:
most of it is event-model validating every value of every page as it composes them.

The controller is a C softIoc: a busy record whose put-callback completes after 0.1 s (a
calcout with ODLY) and waveforms filled by the benchmark before each scan, so every run reads
and stores the same 510 000 values.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pvflow import Context
from pvflow.demo.network import free_port, loopback_env
from pvflow.demo.processes import ServerProcess

READY_LINE = "iocRun: All initialization complete"
PREFIX = "wbench:"
POINTS = 10_000
WAVEFORMS = 50


def database(points: int, waveforms: int) -> str:
    records = [
        f'record(bo, "{PREFIX}mybusy") {{ field(ZNAM, "Done") field(ONAM, "Busy") '
        f'field(FLNK, "{PREFIX}run") }}',
        # Busy starts a 0.1 s "scan"; the calcout then puts Done back, and the put-callback
        # of Busy completes only then (it waits for every record the put processed)
        f'record(calcout, "{PREFIX}run") {{ field(INPA, "{PREFIX}mybusy") field(CALC, "A") '
        f'field(OOPT, "When Non-zero") field(DOPT, "Use OCAL") field(OCAL, "0") '
        f'field(ODLY, "0.1") field(OUT, "{PREFIX}mybusy PP") }}',
    ]
    for name in ["t_array", *(f"w{index:02d}" for index in range(waveforms))]:
        records.append(f'record(waveform, "{PREFIX}{name}") {{ field(FTVL, "DOUBLE") '
                       f'field(NELM, "{points}") }}')
    return "\n".join(records) + "\n"


def fill(context: Context, points: int, waveforms: int) -> None:
    """Same arrays for every run: trigger times 1 ms apart, and 50 signals."""
    times = time.time() + 1e-3 * np.arange(points)
    context.put(PREFIX + "t_array", times)
    for index in range(waveforms):
        context.put(f"{PREFIX}w{index:02d}", np.sin(np.arange(points) * 1e-3 * (index + 1)))


def run_once(context: Context, target: Callable[[str, dict[str, Any]], Any] | None,
             background: bool, backup: Path, waveforms: int, points: int
             ) -> tuple[float, float]:
    """The RunEngine's seconds for one fly scan (no subscriber when ``target`` is None), and
    the writer's drain time after it."""
    from bluesky import RunEngine

    from pvflow.bluesky.busy_flyer import BusyFlyer
    from pvflow.bluesky.controller import FlyController
    from pvflow.bluesky.plans import fly_scan
    from pvflow.bluesky.writer import BackgroundWriter

    arrays = {"t": "t_array", **{f"w{index:02d}": f"w{index:02d}" for index in range(waveforms)}}
    flyer = BusyFlyer(context, name="fly", controller=FlyController(
        prefix=PREFIX, arrays=arrays, settings={}), complete_timeout=60.0)
    engine = RunEngine({})
    writer = None
    if target is not None:
        writer = BackgroundWriter(target, backup_directory=backup) if background else None
        engine.subscribe(writer if writer is not None else target)
    started = time.perf_counter()
    engine(fly_scan(flyer, md={"points": points}))
    elapsed = time.perf_counter() - started
    drain = 0.0
    if writer is not None:
        drained = time.perf_counter()
        writer.close()
        drain = time.perf_counter() - drained
    return elapsed, drain


def targets(scratch: Path) -> dict[str, Callable[[], Callable[[str, dict[str, Any]], Any]]]:
    """Fresh target factories: JSON lines files, and an embedded Tiled server."""
    from pvflow.bluesky.targets.jsonl import JsonLinesTarget

    found: dict[str, Callable[[], Any]] = {
        "JSON lines": lambda: JsonLinesTarget(scratch / f"jsonl-{time.monotonic_ns()}")}
    try:
        from pvflow.bluesky.targets.tiled import TiledTarget, connect
        from pvflow.demo.tiled_server import TiledServer
    except ImportError:
        return found
    server = TiledServer(scratch / "tiled").start()
    targets.servers.append(server)  # type: ignore[attr-defined]
    found["Tiled (SQLite+DuckDB)"] = lambda: TiledTarget(connect(server.uri, server.api_key))
    return found


targets.servers = []  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.writer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--points", type=int, default=POINTS)
    parser.add_argument("--waveforms", type=int, default=WAVEFORMS)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="pvflow-writer-bench-") as folder:
        scratch = Path(folder)
        (scratch / "ioc.db").write_text(database(args.points, args.waveforms))
        env = loopback_env(free_port(), free_port())
        ioc = ServerProcess([sys.executable, "-m", "epicscorelibs.ioc", "-d",
                             str(scratch / "ioc.db")], env, READY_LINE, name="softIoc")
        rows = []
        try:
            with ioc, Context(env, timeout=30.0) as context:
                fill(context, args.points, args.waveforms)
                alone = statistics.median(
                    run_once(context, None, False, scratch, args.waveforms, args.points)[0]
                    for _ in range(args.repeats))
                for label, make in targets(scratch).items():
                    times: dict[bool, list[float]] = {False: [], True: []}
                    drains = []
                    for _ in range(args.repeats):
                        for background in (False, True):
                            elapsed, drain = run_once(context, make(), background,
                                                      scratch / "backup", args.waveforms,
                                                      args.points)
                            times[background].append(elapsed)
                            if background:
                                drains.append(drain)
                    direct = statistics.median(times[False])
                    behind = statistics.median(times[True])
                    rows.append((label, direct, behind, behind / direct,
                                 statistics.median(drains)))
        finally:
            for server in targets.servers:  # type: ignore[attr-defined]
                server.stop()
    print(f"fly scan: {args.points} points x {args.waveforms + 1} waveforms, "
          f"median of {args.repeats} runs; RunEngine seconds per run")
    print(f"RunEngine alone (no subscriber): {alone:.3f} s")
    print("| target | subscribed directly | behind BackgroundWriter | ratio | "
          "writer drain after RE |")
    print("|---|---|---|---|---|")
    for label, direct, behind, ratio, drain in rows:
        print(f"| {label} | {direct:.3f} s | {behind:.3f} s | {ratio:.3f} | {drain:.3f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
