"""The measured operations, each written once against the adapter verbs.

Every function returns a flat ``{metric key: number}`` mapping in the units of ``METRICS``; the
report divides by the reference client's number. Repetition counts come from ``Plan`` so
``--quick`` can shrink them without touching the operations.
"""

from __future__ import annotations

import dataclasses
import itertools
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence

import numpy

from .clients import ClientAdapter
from .image_server import IMAGE_SHAPE, image
from .ioc import FLOOD_RECORD, IMAGE, INPUT_NAMES, LARGE_WAVEFORM, OUTPUT_NAMES, SMALL_WAVEFORM


@dataclasses.dataclass(frozen=True)
class Metric:
    """A report row. ``better`` is "lower", "higher" or "-" (context, not a score); ``absolute``
    rows are already normalised or are context, so the report shows them unchanged; ``versus``
    rows compare with another client than the reference (a PVA-only row has no CA number)."""

    label: str
    unit: str
    better: str = "lower"
    absolute: bool = False
    versus: str = ""  # a client key: ratios to that client instead of the reference


# Report order; keys are what the operations return.
METRICS: dict[str, Metric] = {
    "get_p50": Metric("single get p50", "µs"),
    "get_p99": Metric("single get p99", "µs"),
    "get_cpu": Metric("CPU per get", "µs"),
    "put_get_p50": Metric("put(wait)+get p50", "µs"),
    "bulk_50": Metric("bulk get 50 connected", "ms"),
    "bulk_1000": Metric("bulk get 1000 connected", "ms"),
    "fresh_200": Metric("fresh process connect+read 200", "ms"),
    "fresh_1000": Metric("fresh process connect+read 1000", "ms"),
    "waveform_1e3_p50": Metric("1e3-double waveform get p50", "µs"),
    "waveform_1e6": Metric("1e6-double waveform get", "ms"),
    "monitor_rate": Metric("monitor events/s under put flood", "ev/s", "higher"),
    "monitor_delivered": Metric("monitor % delivered under put flood", "%", "higher", True),
    "putter_rate": Metric("put rate of the flood during that run", "puts/s", "-", True),
}
# Rows only pvAccess clients can measure (CA has no normative types); shown after the others.
PVA_METRICS: dict[str, Metric] = {
    "ntndarray_1m": Metric("NTNDArray 1 Mpixel uint16 get, / p4p", "ms", versus="p4p"),
}
REPORTED = {**METRICS, **PVA_METRICS}


@dataclasses.dataclass(frozen=True)
class Plan:
    """How many times to repeat each operation."""

    single_gets: int = 3000
    put_gets: int = 1000
    bulk_50: int = 100
    bulk_1000: int = 20
    small_waveforms: int = 1000
    large_waveforms: int = 10
    images: int = 20
    flood_puts: int = 20_000
    fresh_processes: int = 5

    @classmethod
    def quick(cls) -> Plan:
        return cls(single_gets=200, put_gets=50, bulk_50=10, bulk_1000=3, small_waveforms=50,
                   large_waveforms=2, images=2, flood_puts=2000, fresh_processes=1)


MICROSECONDS = 1e6
MILLISECONDS = 1e3
FLOOD_QUIET_SECONDS = 5.0
FLOOD_LIMIT_SECONDS = 60.0


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def names_to_connect() -> list[str]:
    return [*INPUT_NAMES, *OUTPUT_NAMES, SMALL_WAVEFORM, LARGE_WAVEFORM, FLOOD_RECORD]


def single_get(client: ClientAdapter, plan: Plan) -> dict[str, float]:
    """Latency of back-to-back gets of one scalar; CPU (all threads) over the same loop."""
    name = INPUT_NAMES[0]
    client.time_each(lambda: client.get(name), max(10, plan.single_gets // 10))  # warm-up
    cpu_started = time.process_time()
    durations = client.time_each(lambda: client.get(name), plan.single_gets)
    cpu = time.process_time() - cpu_started
    return {
        "get_p50": percentile(durations, 0.50) * MICROSECONDS,
        "get_p99": percentile(durations, 0.99) * MICROSECONDS,
        "get_cpu": cpu / plan.single_gets * MICROSECONDS,
    }


def put_then_get(client: ClientAdapter, plan: Plan) -> dict[str, float]:
    """A put with completion followed by a get of the same record (a set-and-check)."""
    name = OUTPUT_NAMES[0]
    counter = itertools.count(1)
    durations = client.time_each(lambda: client.put_and_get(name, float(next(counter))),
                                 plan.put_gets)
    return {"put_get_p50": percentile(durations, 0.50) * MICROSECONDS}


def bulk_get(client: ClientAdapter, plan: Plan) -> dict[str, float]:
    """Median time to read 50 and 1000 already-connected scalars."""
    results = {}
    for count, repetitions in ((50, plan.bulk_50), (1000, plan.bulk_1000)):
        names = INPUT_NAMES[:count]
        values = client.run(lambda: client.get_many(names))
        if [float(value) for value in values] != [float(index) for index in range(count)]:
            raise AssertionError(f"bulk get of {count} returned wrong values")
        durations = client.time_each(lambda: client.get_many(names), repetitions)
        results[f"bulk_{count}"] = statistics.median(durations) * MILLISECONDS
    return results


def waveforms(client: ClientAdapter, plan: Plan) -> dict[str, float]:
    """Array reads: 1e3 doubles (latency) and 1e6 doubles (bandwidth)."""
    large = client.run(lambda: client.get(LARGE_WAVEFORM))
    if len(large) != 1_000_000 or float(large[-1]) != 999_999.0:
        raise AssertionError(f"1e6 waveform read returned {len(large)} elements")
    small = client.time_each(lambda: client.get(SMALL_WAVEFORM), plan.small_waveforms)
    big = client.time_each(lambda: client.get(LARGE_WAVEFORM), plan.large_waveforms)
    return {
        "waveform_1e3_p50": percentile(small, 0.50) * MICROSECONDS,
        "waveform_1e6": statistics.median(big) * MILLISECONDS,
    }


def ntndarray(client: ClientAdapter, plan: Plan) -> dict[str, float]:
    """Median get of the 1024 x 1024 uint16 NTNDArray as the client hands it to its caller
    (pvAccess clients only: CA has no normative types; the floor decodes doubles only)."""
    if client.protocol != "pva" or not client.normative_types:
        return {}
    client.run(lambda: client.connect([IMAGE]))
    pixels = numpy.asarray(client.run(lambda: client.get(IMAGE))).reshape(-1)
    expected = image().reshape(-1)
    if pixels.size != expected.size or pixels[-1] != expected[-1]:
        raise AssertionError(f"{IMAGE_SHAPE} image read returned {pixels.size} pixels")
    durations = client.time_each(lambda: client.get(IMAGE), plan.images)
    return {"ntndarray_1m": statistics.median(durations) * MILLISECONDS}


class FloodCounter:
    """Monitor callback for the flood: distinct flood values seen, order, time of the last one."""

    def __init__(self, count: int):
        self.count = count
        self.events = 0
        self.distinct: set[float] = set()
        self.out_of_order = 0
        self.previous = 0.0
        self.last_event_time = 0.0
        self.initial_seen = threading.Event()

    def __call__(self, value: float) -> None:
        self.last_event_time = time.perf_counter()
        if value < 1:  # the value written before the flood
            self.initial_seen.set()
            return
        self.events += 1
        self.distinct.add(value)
        if value < self.previous:
            self.out_of_order += 1
        self.previous = value


def monitor_flood(client: ClientAdapter, plan: Plan) -> dict[str, float]:
    """Count monitor events while a separate raw-CA process puts 1..N into one ao, flat out.

    The putter is the same for every client, so only the receiving side differs. Events/s is
    events received over the time from the first put to the last event; % delivered is distinct
    values received over values put. The wait ends at the last value, after a quiet spell, or at
    a hard limit (a client that stalls still gets a number).
    """
    client.run(lambda: client.put(FLOOD_RECORD, 0.0))
    counter = FloodCounter(plan.flood_puts)
    close = client.subscribe(FLOOD_RECORD, counter)
    _wait(client, lambda: counter.initial_seen.is_set(), client.timeout, "initial monitor event")
    putter = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.rawca", "flood", FLOOD_RECORD, str(plan.flood_puts)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert putter.stdin is not None and putter.stdout is not None
        if putter.stdout.readline().strip() != "ready":
            raise RuntimeError("flood putter did not connect")
        started = time.perf_counter()
        putter.stdin.write("go\n")
        putter.stdin.flush()
        final = float(plan.flood_puts)

        def finished() -> bool:
            now = time.perf_counter()
            return (final in counter.distinct or now - started > FLOOD_LIMIT_SECONDS
                    or now - max(counter.last_event_time, started) > FLOOD_QUIET_SECONDS)

        _wait(client, finished, FLOOD_LIMIT_SECONDS + 1, "flood end")
        try:
            putter.wait(FLOOD_QUIET_SECONDS)
            put_report = putter.stdout.readline().split()
        except subprocess.TimeoutExpired:
            put_report = []  # the putter's own rate is context only
    finally:
        putter.kill()
        putter.wait()
        close()
    elapsed = max(counter.last_event_time - started, 1e-9)
    result = {
        "monitor_rate": counter.events / elapsed,
        "monitor_delivered": 100.0 * len(counter.distinct) / plan.flood_puts,
        "monitor_out_of_order": float(counter.out_of_order),
    }
    if len(put_report) == 3:
        result["putter_rate"] = plan.flood_puts / float(put_report[1])
    return result


def _wait(client: ClientAdapter, condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` while the client keeps delivering (an asyncio client needs its loop run)."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        client.idle(0.01)


Operation = Callable[[ClientAdapter, Plan], dict[str, float]]

# The in-worker operations and the metrics each yields, in the order they run; the flood goes
# last because it can wedge a client. The fresh-process metrics come from their own processes.
OPERATIONS: tuple[tuple[Operation, tuple[str, ...]], ...] = (
    (single_get, ("get_p50", "get_p99", "get_cpu")),
    (put_then_get, ("put_get_p50",)),
    (bulk_get, ("bulk_50", "bulk_1000")),
    (waveforms, ("waveform_1e3_p50", "waveform_1e6")),
    (ntndarray, ("ntndarray_1m",)),
    (monitor_flood, ("monitor_rate", "monitor_delivered", "putter_rate")),
)
FRESH_COUNTS = (200, 1000)
