"""A small simulated beamline served by the C softIoc, and the tour `pvflow demo` gives of it.

The records are plain EPICS base records, so what the demo shows is what a user sees against
a real IOC: a motor-like setpoint/readback pair with a put-callback that completes when the
move is done, a noisy detector, a waveform, and a thousand PVs for bulk reads.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

from ..context import Context
from .network import free_port, loopback_env
from .processes import ServerProcess

READY_LINE = "iocRun: All initialization complete"
BULK_SIZE = 1000


def beamline_db(prefix: str) -> str:
    """Records of the simulated beamline under ``prefix``."""
    records = [
        # the move takes 0.05 s: the put-callback on the setpoint completes when it is done
        f'record(ao, "{prefix}m1") {{ field(PREC, "3") field(EGU, "mm") '
        f'field(DRVH, "10") field(DRVL, "-10") field(FLNK, "{prefix}m1:move") }}',
        f'record(calcout, "{prefix}m1:move") {{ field(INPA, "{prefix}m1") field(CALC, "A") '
        f'field(ODLY, "0.05") field(OUT, "{prefix}m1:rbv PP") }}',
        f'record(ai, "{prefix}m1:rbv") {{ field(PREC, "3") field(EGU, "mm") '
        f'field(HOPR, "10") field(LOPR, "-10") field(FLNK, "{prefix}det") }}',
        # a Gaussian peak at 1.0 mm with some noise, counted as part of every move
        f'record(calc, "{prefix}det") {{ field(INPA, "{prefix}m1:rbv") '
        f'field(CALC, "1000*EXP(-(A-1)*(A-1)/0.5)+RNDM*20") field(PREC, "1") '
        f'field(EGU, "counts") }}',
        f'record(waveform, "{prefix}spectrum") {{ field(FTVL, "DOUBLE") field(NELM, "4096") }}',
        f'record(longout, "{prefix}counter") {{ }}',
    ]
    records += [f'record(ai, "{prefix}bulk{index}") {{ field(VAL, "{index}") field(PINI, "YES") }}'
                for index in range(BULK_SIZE)]
    return "\n".join(records) + "\n"


class SimulatedBeamline:
    """The demo's IOC on free loopback ports; ``env`` is what clients need to reach it."""

    def __init__(self, prefix: str = "DEMO:"):
        self.prefix = prefix
        self._folder = tempfile.TemporaryDirectory(prefix="pvflow-demo-")
        database = Path(self._folder.name) / "beamline.db"
        database.write_text(beamline_db(prefix))
        self.env = loopback_env(free_port(), free_port())
        self.ioc = ServerProcess([sys.executable, "-m", "epicscorelibs.ioc", "-d", str(database)],
                                 self.env, READY_LINE, name="demo IOC")

    def __enter__(self) -> SimulatedBeamline:
        self.ioc.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ioc.stop()
        self._folder.cleanup()


def _section(title: str) -> None:
    print(f"\n== {title}")


def tour(context: Context, prefix: str, points: int) -> dict[str, float]:
    """Connect, scan, bulk-read and monitor through pvflow; returns what it measured."""
    measured: dict[str, float] = {}
    names = [f"{prefix}bulk{index}" for index in range(BULK_SIZE)]

    _section(f"connect and read {BULK_SIZE} PVs in one call")
    started = time.perf_counter()
    values = context.get_many(names)
    measured["connect+read ms"] = (time.perf_counter() - started) * 1e3
    failed = [name for name, value in values.items() if isinstance(value, BaseException)]
    print(f"{len(values) - len(failed)} values in {measured['connect+read ms']:.1f} ms"
          + (f", {len(failed)} failed" if failed else ""))
    started = time.perf_counter()
    context.get_many(names)
    measured["bulk read ms"] = (time.perf_counter() - started) * 1e3
    print(f"read again (connected): {measured['bulk read ms']:.2f} ms")

    _section("metadata")
    reading = context.get(f"{prefix}m1:rbv", form="ctrl")
    print(f"{prefix}m1:rbv units={reading.units!r} precision={reading.precision} "
          f"display limits={reading.display_limits}")

    _section(f"step scan of {prefix}m1 over {points} points (put waits for the move)")
    print(f"{'position':>10} {'readback':>10} {'detector':>10}")
    started = time.perf_counter()
    for step in range(points):
        position = -1.0 + 4.0 * step / max(points - 1, 1)
        context.put(f"{prefix}m1", position, wait=True)
        row = context.get_many([f"{prefix}m1:rbv", f"{prefix}det"])
        print(f"{position:10.3f} {row[f'{prefix}m1:rbv']:10.3f} {row[f'{prefix}det']:10.1f}")
    measured["scan s"] = time.perf_counter() - started

    _section("monitor: every update, in order")
    flood = 5000
    received: list[int] = []
    done = threading.Event()

    def count(update: object) -> None:
        received.append(update.value)  # type: ignore[attr-defined]
        if received[-1] == flood:
            done.set()

    context.put(f"{prefix}counter", 0)
    with context.subscribe(f"{prefix}counter", count):
        started = time.perf_counter()
        for value in range(1, flood + 1):
            context.put(f"{prefix}counter", value, wait=False)
        done.wait(30)
        elapsed = time.perf_counter() - started
    in_order = received == sorted(received)
    delivered = len(set(received) - {0})
    measured["monitor events/s"] = delivered / elapsed
    print(f"{delivered}/{flood} updates delivered in order={in_order} "
          f"({measured['monitor events/s']:.0f} events/s)")
    return measured


def run(points: int = 11) -> int:
    """Start the simulated beamline, run the tour, stop everything (also on Ctrl-C)."""
    print("starting a simulated beamline (C softIoc on loopback) ...")
    with SimulatedBeamline() as beamline, Context(beamline.env, timeout=10.0) as context:
        try:
            measured = tour(context, beamline.prefix, points)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping the beamline")
            return 130
    _section("summary")
    for key, value in measured.items():
        print(f"{key:>20}: {value:.2f}")
    return 0
