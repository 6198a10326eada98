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
    counter = Counter()
    close = SUBSCRIBERS[name](names(count), counter)
    deadline = time.monotonic() + 60.0
    while len(counter.last) < count and time.monotonic() < deadline:
        time.sleep(0.1)  # a benchmark's settling, not a test's synchronisation
    with counter.lock:
        start_updates, start_missed = counter.updates, counter.missed
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(seconds)
    with counter.lock:
        updates, missed = counter.updates - start_updates, counter.missed - start_missed
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    close()
    print(json.dumps({"client": name, "connected": len(counter.last), "updates": updates,
                      "missed": missed, "seconds": wall, "cpu_fraction": cpu / wall}),
          flush=True)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
            before = _cpu_seconds(ioc.process.pid)
            completed = subprocess.run(
                [sys.executable, "-m", "benchmarks.scale_monitor", "--client", name, "--count",
                 str(count), "--seconds", str(seconds)], cwd=REPOSITORY, capture_output=True,
                text=True, env={**os.environ, **environment}, timeout=seconds + 240)
            lines = completed.stdout.strip().splitlines()
            if completed.returncode or not lines:
                results.append({"client": name, "error": completed.stderr.strip()[-200:]})
                continue
            result = json.loads(lines[-1])
            result["ioc_cpu_fraction"] = (_cpu_seconds(ioc.process.pid) - before) / result[
                "seconds"] if result["seconds"] else 0.0
            results.append(result)
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
    print(f"| client | PVs connected | updates/s | delivered of N x 10 Hz | missed (gaps) "
          f"| client CPU (of a core) | IOC CPU (of a core) |")
    print("|---|---|---|---|---|---|---|")
    for result in run(arguments.count, arguments.seconds, arguments.clients):
        if "error" in result:
            print(f"| {result['client']} | {result['error']} |")
            continue
        print(f"| {result['client']} | {result['connected']:,} | "
              f"{result['updates'] / result['seconds']:,.0f} | "
              f"{100 * result['updates'] / expected:.0f}% | {result['missed']:,} | "
              f"{100 * result['cpu_fraction']:.0f}% | {100 * result['ioc_cpu_fraction']:.0f}% |")


if __name__ == "__main__":
    main()
