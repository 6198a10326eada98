"""``python -m benchmarks.scale_reconnect``: restart an IOC that holds 20 000 of 100 000
monitored channels; how long until every one is back with a value, and how many search
datagrams the client sent while the IOC was down and while it came back.

The IOCs split the names interleaved (five IOCs of 20 000 each by default). One client process
(``--client``, run by this module) subscribes to every name, then reports on stdout as the
harness stops IOC 0, keeps it down for ``--down`` seconds and starts it again on its ports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from .scale_ioc import ScaleServers, scale_names

REPOSITORY = Path(__file__).resolve().parent.parent


class Tracker:
    """Connection state and value arrivals of the restarted IOC's channels."""

    def __init__(self, names: list[str]) -> None:
        self.names = set(names)
        self.down: set[str] = set()
        self.fresh: set[str] = set()  # a value since reconnecting
        self.changed = threading.Condition()

    def value(self, name: str):
        def deliver(reading) -> None:
            with self.changed:
                if name in self.names and name not in self.down:
                    self.fresh.add(name)
                    self.changed.notify_all()
        return deliver

    def connection(self, name: str):
        def deliver(connected: bool) -> None:
            with self.changed:
                if name in self.names:
                    (self.down.discard if connected else self.down.add)(name)
                    self.changed.notify_all()
        return deliver

    def wait(self, condition, timeout: float = 300.0) -> None:
        with self.changed:
            if not self.changed.wait_for(condition, timeout):
                raise TimeoutError("the restarted IOC's channels did not all come back")


def client(count: int, iocs: int) -> None:
    from pvflow import Context

    names = scale_names(count)
    restarted = names[0::iocs]
    tracker = Tracker(restarted)
    context = Context(timeout=120.0)
    for name in names:
        context.subscribe(name, tracker.value(name), connection_callback=tracker.connection(name))
    tracker.wait(lambda: len(tracker.fresh) == len(restarted))
    print("subscribed", flush=True)
    tracker.wait(lambda: len(tracker.down) == len(restarted))
    with tracker.changed:
        tracker.fresh.clear()
    lost_at, lost_stats = time.perf_counter(), context.stats()
    print("disconnected", flush=True)
    sys.stdin.readline()  # the harness starts the IOC again
    started_at, started_stats = time.perf_counter(), context.stats()
    tracker.wait(lambda: not tracker.down and len(tracker.fresh) == len(restarted))
    done_at, done_stats = time.perf_counter(), context.stats()

    def rate(before: dict[str, int], after: dict[str, int], seconds: float) -> float:
        datagrams = after["search_datagrams_sent"] - before["search_datagrams_sent"]
        return datagrams * iocs / seconds  # each datagram goes to every IOC in the list

    print(json.dumps({
        "channels": count, "restarted": len(restarted),
        "reconnect_seconds": done_at - started_at,
        "down_seconds": started_at - lost_at,
        "datagrams_per_second_down": rate(lost_stats, started_stats, started_at - lost_at),
        "datagrams_per_second_back": rate(started_stats, done_stats, done_at - started_at),
        "names_searched_back": done_stats["searches_sent"] - started_stats["searches_sent"],
    }), flush=True)
    context.close()


def harness(count: int, iocs: int, down: float) -> dict[str, float]:
    with ScaleServers(count, iocs) as servers:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.scale_reconnect", "--client", "--count",
             str(count), "--iocs", str(iocs)], cwd=REPOSITORY, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env={**os.environ, **servers.environment})
        assert process.stdin is not None and process.stdout is not None
        try:
            if process.stdout.readline().strip() != "subscribed":
                raise RuntimeError("the client did not subscribe")
            servers.iocs[0].stop()
            if process.stdout.readline().strip() != "disconnected":
                raise RuntimeError("the client did not see the IOC go")
            time.sleep(down)  # the outage whose search traffic is measured
            servers.iocs[0].start()
            process.stdin.write("go\n")
            process.stdin.flush()
            return json.loads(process.stdout.readline())
        finally:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--iocs", type=int, default=5)
    parser.add_argument("--down", type=float, default=10.0)
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.client:
        client(arguments.count, arguments.iocs)
        return
    result = harness(arguments.count, arguments.iocs, arguments.down)
    print(f"restart of an IOC holding {result['restarted']:,} of {result['channels']:,} "
          f"monitored channels: all back with a value in {result['reconnect_seconds']:.2f} s; "
          f"search datagrams/s while it was down: {result['datagrams_per_second_down']:.0f}, "
          f"while it came back: {result['datagrams_per_second_back']:.0f}; names searched "
          f"while it came back: {result['names_searched_back']:,}")


if __name__ == "__main__":
    main()
