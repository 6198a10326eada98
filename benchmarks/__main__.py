"""``python -m benchmarks``: start the IOC, run every client in its own processes, print the table.

Clients run one after another against the same IOC, each in a fresh worker process (see
``worker.py``); the fresh-process connect+read runs in further processes of its own. A worker
that fails or hangs costs only its own cells: it is stopped by PID after a time limit and
whatever it had written is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import report
from .clients import CLIENTS
from .ioc import BenchServer
from .operations import FRESH_COUNTS, METRICS, Plan

REPOSITORY = Path(__file__).resolve().parent.parent
WORKER_LIMIT_SECONDS = 300.0
FRESH_LIMIT_SECONDS = 60.0


def run_worker(arguments: list[str], environment: dict[str, str], limit: float,
               scratch: Path) -> tuple[dict[str, Any], str]:
    """Run one worker; return what it wrote and, when it failed, the tail of its stderr."""
    output = scratch / f"result-{time.monotonic_ns()}.json"
    log_path = output.with_suffix(".log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker", arguments[0], str(output), *arguments[1:]],
            cwd=REPOSITORY, env=environment, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            process.wait(limit)
            failure = f"exit status {process.returncode}" if process.returncode else ""
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            failure = f"timed out after {limit:.0f} s"
    results = json.loads(output.read_text()) if output.exists() else {}
    tail = "".join(log_path.read_text().splitlines(keepends=True)[-8:])
    if failure:
        results["failure"] = f"error: worker {failure}"
    has_errors = any(str(value).startswith("error") for value in results.values())
    return results, tail if has_errors else ""


def measure_client(key: str, plan: Plan, quick: bool, environment: dict[str, str],
                   scratch: Path) -> dict[str, Any]:
    """All in-worker operations, then the fresh-process runs (median over repetitions)."""
    arguments = [key, "--quick"] if quick else [key]
    results, tail = run_worker(arguments, environment, WORKER_LIMIT_SECONDS, scratch)
    failure = results.pop("failure", None)
    for count in FRESH_COUNTS:
        metric = f"fresh_{count}"
        samples: list[Any] = []
        for _ in range(plan.fresh_processes):
            fresh, fresh_tail = run_worker([key, "--fresh", str(count)], environment,
                                           FRESH_LIMIT_SECONDS, scratch)
            samples.append(fresh.get(metric, fresh.get("failure", "error: no result")))
            tail = tail or fresh_tail
        numbers = [sample for sample in samples if isinstance(sample, float)]
        results[metric] = statistics.median(numbers) if numbers else samples[0]
    if failure:  # a dead worker leaves its remaining cells empty: say why in each of them
        for metric in METRICS:
            results.setdefault(metric, failure)
    if tail:
        print(f"--- {key}: last lines of its log ---\n{tail}", file=sys.stderr)
    return results


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="few repetitions: a smoke test, not a measurement")
    parser.add_argument("--clients", default=",".join(CLIENTS),
                        help=f"comma-separated subset of: {', '.join(CLIENTS)}")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write all numbers here")
    parser.add_argument("--absolute", action="store_true",
                        help="also print a table of absolute numbers")
    arguments = parser.parse_args()
    arguments.client_keys = [key.strip() for key in arguments.clients.split(",") if key.strip()]
    unknown = sorted(set(arguments.client_keys) - set(CLIENTS))
    if unknown:
        parser.error(f"unknown clients {unknown}; choose from {', '.join(CLIENTS)}")
    return arguments


def main() -> None:
    arguments = parse_arguments()
    plan = Plan.quick() if arguments.quick else Plan()
    started = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    with BenchServer() as server, tempfile.TemporaryDirectory(prefix="pvflow-bench-") as scratch:
        environment = {**os.environ, **server.environment}
        for key in arguments.client_keys:
            client_started = time.perf_counter()
            print(f"measuring {key} ...", file=sys.stderr, flush=True)
            results[key] = measure_client(key, plan, arguments.quick, environment, Path(scratch))
            print(f"  {key}: {time.perf_counter() - client_started:.0f} s",
                  file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    print(report.table(results))
    print()
    print(report.legend(results))
    if arguments.absolute:
        print()
        print(report.table(results, ratios=False))
    print(f"Run took {elapsed:.0f} s{' (--quick)' if arguments.quick else ''}.")
    if arguments.json:
        arguments.json.write_text(json.dumps(
            {"quick": arguments.quick, "seconds": elapsed, "results": results}, indent=2))


if __name__ == "__main__":
    main()
