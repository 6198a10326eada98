"""One client in one fresh process: ``python -m benchmarks.worker CLIENT OUTPUT [options]``.

A separate process per client keeps libca-based clients from sharing a CA context, and gives
each client a clean heap and thread set. Results go to the OUTPUT JSON file, rewritten after
every operation, so a client that wedges or crashes half-way still reports what it measured;
an operation that raises is recorded as ``"error: ..."`` and the next one runs.

``--fresh N`` measures instead the fresh-process connect+read of N scalars: the clock starts
after every import, at context creation, and stops when all N values are in hand.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import traceback
from importlib import metadata
from pathlib import Path
from typing import Any

from . import clients
from .ioc import INPUT_NAMES, OUTPUT_NAMES
from .operations import OPERATIONS, Plan, names_to_connect


def _write(path: Path, results: dict[str, Any]) -> None:
    temporary = path.with_suffix(".partial")
    temporary.write_text(json.dumps(results))
    temporary.replace(path)


def _error_text(error: BaseException) -> str:
    return f"error: {type(error).__name__}: {error}".splitlines()[0][:200]


def fresh_names(count: int) -> list[str]:
    """Both record types, so a fresh connect touches as many distinct channels as it reads."""
    half = count // 2
    return [*INPUT_NAMES[:count - half], *OUTPUT_NAMES[:half]]


def measure_fresh(key: str, count: int) -> dict[str, Any]:
    client = clients.load(key)
    names = fresh_names(count)
    started = time.perf_counter()
    client.open()
    values = client.run(lambda: client.connect_and_read(names))
    elapsed = time.perf_counter() - started
    if len(values) != count or any(value is None for value in values):
        raise AssertionError("fresh connect+read returned missing values")
    return {f"fresh_{count}": elapsed * 1e3}


def measure_all(key: str, plan: Plan, output: Path) -> None:
    results: dict[str, Any] = {"client": key}
    try:
        client = clients.load(key)
        results["version"] = metadata.version(client.library) if client.library else ""
        client.open()
        connect_started = time.perf_counter()
        client.run(lambda: client.connect(names_to_connect()))
        results["connect_all_seconds"] = time.perf_counter() - connect_started
    except Exception as error:  # the client cannot run at all: every metric carries the reason
        traceback.print_exc()
        results.update({metric: _error_text(error)
                        for _, metrics in OPERATIONS for metric in metrics})
        _write(output, results)
        return
    _write(output, results)
    for operation, metrics in OPERATIONS:
        try:
            results.update(operation(client, plan))
        except Exception as error:
            traceback.print_exc()
            results.update(dict.fromkeys(metrics, _error_text(error)))
        _write(output, results)
    try:
        client.close()
    except Exception:
        traceback.print_exc()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("client", choices=sorted(clients.CLIENTS))
    parser.add_argument("output", type=Path)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--fresh", type=int, metavar="N")
    arguments = parser.parse_args()
    if arguments.fresh:
        try:
            results = measure_fresh(arguments.client, arguments.fresh)
        except Exception as error:
            traceback.print_exc()
            results = {f"fresh_{arguments.fresh}": _error_text(error)}
        _write(arguments.output, results)
    else:
        plan = Plan.quick() if arguments.quick else Plan()
        measure_all(arguments.client, plan, arguments.output)
    # Skip interpreter teardown: some clients join I/O threads or libca at exit, which can hang
    # after a flood, and nothing is left to measure.
    os._exit(0)


if __name__ == "__main__":
    main()
