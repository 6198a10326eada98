"""``python -m benchmarks.scale_monitor``: N PVs updating at 10 Hz, every update delivered?

Each record is a counter (a ``calc`` adding one to itself, scanned every 0.1 s), so a client
sees a lost update as a gap in a PV's sequence. Each client subscribes to all N in a fresh
process of its own, against the same IOC, and counts for ``--seconds``: updates received,
updates missed (gaps), and its CPU time as a fraction of one core. The IOC's own count of
processings over the same span (N x 10 Hz) and its CPU are printed too, so a rate the IOC
cannot produce on this machine shows as such rather than as a client's loss.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pvflow.demo.network import free_port, loopback_env
from pvflow.demo.processes import ServerProcess

REPOSITORY = Path(__file__).resolve().parent.parent
CLIENTS = ["pvflow", "pyepics", "pvflow-pva", "p4p"]
READY_LINE = "iocRun: All initialization complete"


def names(count: int) -> list[str]:
    return [f"mon:{index:05d}" for index in range(count)]


def database_text(count: int) -> str:
    return "".join(f'record(calc, "{name}") {{ field(SCAN, ".1 second") field(CALC, "A+1") '
                   f'field(INPA, "{name} NPP") }}\n' for name in names(count))


class Counter:
    """Per PV: the last value seen; in all: updates and gaps (values skipped)."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}
        self.updates = 0
        self.missed = 0
        self.lock = threading.Lock()

    def seen(self, name: str, value: float) -> None:
        with self.lock:
            previous = self.last.get(name)
            self.last[name] = value
            self.updates += 1
            if previous is not None and value > previous + 1:
                self.missed += int(value - previous - 1)


def subscribe_pvflow(all_names: list[str], counter: Counter, prefix: str = "") -> Callable[[], None]:
    from pvflow import Context

    context = Context(timeout=60.0)
    for name in all_names:
        context.subscribe(prefix + name, lambda reading, name=name: counter.seen(
            name, float(reading.value)), queue_size=1000)
    return context.close


def subscribe_pyepics(all_names: list[str], counter: Counter) -> Callable[[], None]:
    import epics

    pvs = [epics.PV(name, auto_monitor=True,
                    callback=lambda pvname=None, value=None, **_: counter.seen(pvname, value))
           for name in all_names]
    return lambda: [pv.disconnect() for pv in pvs] and None


def subscribe_p4p(all_names: list[str], counter: Counter) -> Callable[[], None]:
    from p4p.client.thread import Context

    context = Context("pva")
    subscriptions = [context.monitor(name, lambda value, name=name: counter.seen(
        name, float(value)), request="record[queueSize=100]") for name in all_names]

    def close() -> None:
        for subscription in subscriptions:
            subscription.close()
        context.close()
    return close


SUBSCRIBERS: dict[str, Callable[[list[str], Counter], Callable[[], None]]] = {
    "pvflow": subscribe_pvflow,
    "pvflow-pva": lambda all_names, counter: subscribe_pvflow(all_names, counter, "pva://"),
    "pyepics": subscribe_pyepics,
    "p4p": subscribe_p4p,
}


def client(name: str, count: int, seconds: float) -> None:
    """Subscribe, settle, then count over ``seconds``; the IOC's production over the same
    span is read from the counters themselves (the sum of every PV's increase)."""
    counter = Counter()
    close = SUBSCRIBERS[name](names(count), counter)
    deadline = time.monotonic() + 60.0
    while len(counter.last) < count and time.monotonic() < deadline:
        time.sleep(0.1)  # a benchmark's settling, not a test's synchronisation
    print("window", flush=True)
    with counter.lock:
        start_updates, start_missed, start = counter.updates, counter.missed, dict(counter.last)
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(seconds)
    with counter.lock:
        updates, missed = counter.updates - start_updates, counter.missed - start_missed
        produced = sum(value - start[pv] for pv, value in counter.last.items() if pv in start)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    print(json.dumps({"client": name, "connected": len(counter.last), "updates": updates,
                      "missed": missed, "produced": produced, "seconds": wall,
                      "cpu_fraction": cpu / wall}), flush=True)
    close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(name: str, count: int, seconds: float, environment: dict[str, str],
             ioc_pid: int) -> dict[str, Any]:
    """One client process; the IOC's CPU is taken over the client's counting window."""
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.scale_monitor", "--client", name, "--count",
         str(count), "--seconds", str(seconds)], cwd=REPOSITORY, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, text=True, env={**os.environ, **environment})
    assert process.stdout is not None
    watchdog = threading.Timer(seconds + 240.0, process.kill)  # a client that wedges
    watchdog.start()
    try:
        if process.stdout.readline().strip() != "window":
            return {"client": name, "error": "did not subscribe"}
        before = _cpu_seconds(ioc_pid)
        line = process.stdout.readline()
        ioc_cpu = _cpu_seconds(ioc_pid) - before
        if not line:
            return {"client": name, "error": "no result"}
        result: dict[str, Any] = json.loads(line)
        result["ioc_cpu_fraction"] = ioc_cpu / result["seconds"]
        return result
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()


def run(count: int, seconds: float, clients: list[str]) -> list[dict[str, Any]]:
    directory = tempfile.TemporaryDirectory(prefix="pvflow-monitor-")
    database = Path(directory.name) / "monitor.db"
    database.write_text(database_text(count))
    environment = loopback_env(free_port(), free_port(), free_port())
    ioc = ServerProcess([sys.executable, "-m", "pvxslibs.ioc", "-d", str(database)],
                        environment, READY_LINE, name="monitor IOC", startup_timeout=300.0)
    repeater = ServerProcess([str(Path(sys.executable).with_name("caproto-repeater"))],
                             environment, "Repeater is listening", name="caproto-repeater")
    results = []
    try:
        repeater.start()
        ioc.start()
        assert ioc.process is not None
        for name in clients:
            results.append(_measure(name, count, seconds, environment, ioc.process.pid))
    finally:
        ioc.stop()
        repeater.stop()
        directory.cleanup()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", nargs="+", default=CLIENTS, choices=CLIENTS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.client:
        client(arguments.client, arguments.count, arguments.seconds)
        return
    expected = arguments.count * 10 * arguments.seconds
    print(f"| client | PVs connected | IOC made (of N x 10 Hz) | updates/s delivered | "
          f"delivered of made | missed (gaps) | client CPU (of a core) | IOC CPU (of a core) |")
    print("|---|---|---|---|---|---|---|---|")
    for result in run(arguments.count, arguments.seconds, arguments.clients):
        if "error" in result:
            print(f"| {result['client']} | {result['error']} |")
            continue
        made = max(result["produced"], 1)
        print(f"| {result['client']} | {result['connected']:,} | "
              f"{100 * made / expected:.0f}% | {result['updates'] / result['seconds']:,.0f} | "
              f"{100 * result['updates'] / made:.1f}% | {result['missed']:,} | "
              f"{100 * result['cpu_fraction']:.0f}% | {100 * result['ioc_cpu_fraction']:.0f}% |")


if __name__ == "__main__":
    main()
