"""``python -m benchmarks.device_connect``: connect an ophyd Device (and an ophyd-async Device)
of 200 and 1000 EPICS signals, per control layer, and print a ratio table.

Every measurement runs in a fresh process (a connect is only "cold" once) against the same
benchmark softIoc; the cell is the median over the repetitions. A full garbage collection runs
just before the clock starts, in every layer alike: the collection that the imports leave owing
(50-70 ms here) would otherwise land inside whichever connect comes first. Layers: ophyd's pyepics and
caproto layers, ophyd-epicsrs and pvflow for ophyd; aioca (ophyd-async's own CA backend),
ophyd-epicsrs and pvflow for ophyd-async. Ratios are to ophyd-epicsrs, the reference.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time

from .fresh_process import run_worker
from .ioc import INPUT_NAMES, BenchServer

COUNTS = (200, 1000)
OPHYD_LAYERS = ("epicsrs", "pvflow", "pyepics", "caproto")
ASYNC_LAYERS = ("epicsrs", "pvflow", "aioca")
REFERENCE = "epicsrs"
LIMIT_SECONDS = 120.0


def _ophyd_connect(layer: str, count: int) -> float:
    """Seconds from building the Device to ``wait_for_connection`` returning."""
    if layer in ("pyepics", "caproto"):
        os.environ["OPHYD_CONTROL_LAYER"] = layer
    elif layer == "pvflow":
        from pvflow.ophyd import use_pvflow

        use_pvflow()
    else:
        os.environ["OPHYD_CONTROL_LAYER"] = "dummy"
        import ophyd_epicsrs

        ophyd_epicsrs.use_epicsrs()
    from ophyd import Component, Device, EpicsSignalRO

    components = {f"signal{index}": Component(EpicsSignalRO, name)
                  for index, name in enumerate(INPUT_NAMES[:count])}
    device_class = type(f"Bench{count}", (Device,), components)
    gc.collect()  # the collection owed for the imports is not part of any layer's connect
    started = time.perf_counter()
    device = device_class("", name="bench")
    device.wait_for_connection(timeout=60)
    return time.perf_counter() - started


def _async_connect(layer: str, count: int) -> float:
    """Seconds for ``await device.connect()`` of a Device holding ``count`` read signals."""
    from ophyd_async.core import Device

    if layer == "pvflow":
        from pvflow.ophyd_async import pvflow_signal_r as signal_r
    elif layer == "epicsrs":
        from ophyd_epicsrs.ophyd_async import epicsrs_signal_r as signal_r
    else:
        from ophyd_async.epics.core import epics_signal_r as signal_r

    class Bench(Device):
        def __init__(self) -> None:
            for index, name in enumerate(INPUT_NAMES[:count]):
                setattr(self, f"signal{index}", signal_r(float, name))
            super().__init__(name="bench")

    async def connect() -> float:
        gc.collect()
        started = time.perf_counter()
        device = Bench()
        await device.connect(timeout=60)
        return time.perf_counter() - started

    return asyncio.run(connect())


def _worker(kind: str, layer: str, count: int) -> None:
    seconds = (_ophyd_connect if kind == "ophyd" else _async_connect)(layer, count)
    print(json.dumps({"seconds": seconds}))
    sys.stdout.flush()
    os._exit(0)  # skip every library's atexit teardown: not part of the measurement


def measure(kind: str, layer: str, count: int, environment: dict[str, str],
            repetitions: int) -> float | str:
    """Median seconds over fresh processes, or the error of the last failed one."""
    samples: list[float] = []
    failure = ""
    for _ in range(repetitions):
        result, error = run_worker("benchmarks.device_connect", [kind, layer, str(count)],
                                   environment, LIMIT_SECONDS)
        if result is None:
            failure = error
        else:
            samples.append(result["seconds"])
    return statistics.median(samples) if samples else failure


def table(results: dict[str, dict[str, float | str]], layers: tuple[str, ...]) -> str:
    """Rows: device sizes; columns: the reference's absolute time, then ratios to it."""
    headings = ["signals", f"{REFERENCE} (absolute)"] + [f"{layer} / {REFERENCE}"
                                                         for layer in layers if layer != REFERENCE]
    rows = []
    for count in COUNTS:
        reference = results[REFERENCE][str(count)]
        row = [str(count), f"{reference * 1000:.0f} ms" if isinstance(reference, float)
               else str(reference)]
        for layer in layers:
            if layer == REFERENCE:
                continue
            value = results[layer][str(count)]
            if isinstance(value, float) and isinstance(reference, float):
                row.append(f"{value / reference:.2f} ({value * 1000:.0f} ms)")
            else:
                row.append(str(value))
        rows.append(row)
    widths = [max(len(line[column]) for line in [headings, *rows])
              for column in range(len(headings))]
    render = lambda cells: "| " + " | ".join(  # noqa: E731
        cell.ljust(width) for cell, width in zip(cells, widths)) + " |"
    return "\n".join([render(headings), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *map(render, rows)])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.device_connect",
                                     description=__doc__)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--worker", nargs=3, metavar=("KIND", "LAYER", "COUNT"),
                        help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        kind, layer, count = arguments.worker
        _worker(kind, layer, int(count))
        return
    with BenchServer() as server:
        environment = {**os.environ, **server.environment}
        for kind, layers in (("ophyd", OPHYD_LAYERS), ("ophyd-async", ASYNC_LAYERS)):
            results = {layer: {str(count): measure(kind, layer, count, environment,
                                                   arguments.repetitions)
                               for count in COUNTS} for layer in layers}
            print(f"\n{kind} Device connect (median of {arguments.repetitions} fresh "
                  f"processes; cells: time / {REFERENCE}, lower is faster)\n")
            print(table(results, layers))
            sys.stdout.flush()


if __name__ == "__main__":
    main()
