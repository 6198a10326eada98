"""One fresh process reading N names with one client: ``python -m benchmarks.scale_worker
CLIENT FIRST COUNT``; prints one JSON line.

The clock starts after the imports, at context creation, as a user's script would, and stops
when every value is in hand. CPU time and resident memory come from the process itself, so the
numbers are those of the client alone (the IOCs run in processes of their own).
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .scale_ioc import scale_names

TIMEOUT = 120.0


def read_pvflow(names: Sequence[str]) -> Sequence[Any]:
    from pvflow import Context

    context = Context(timeout=TIMEOUT)
    values = context.get_many(names)
    return [values[name] for name in names]


def read_pvflow_pva(names: Sequence[str]) -> Sequence[Any]:
    return read_pvflow([f"pva://{name}" for name in names])


def read_pyepics(names: Sequence[str]) -> Sequence[Any]:
    import epics

    return epics.caget_many(list(names), connection_timeout=TIMEOUT, timeout=TIMEOUT)


def read_epicsrs(names: Sequence[str]) -> Sequence[Any]:
    import ophyd_epicsrs

    results = ophyd_epicsrs.get_ca_context().bulk_get(list(names), timeout=TIMEOUT)
    return [results.get(name) for name in names]


def read_epicsrs_pva(names: Sequence[str]) -> Sequence[Any]:
    import ophyd_epicsrs

    results = ophyd_epicsrs.get_pva_context().bulk_get(list(names), timeout=TIMEOUT)
    return [(results.get(name) or {}).get("value") for name in names]


def read_p4p(names: Sequence[str]) -> Sequence[Any]:
    from p4p.client.thread import Context

    context = Context("pva")
    return context.get(list(names), timeout=TIMEOUT, throw=False)


def read_floor(key: str) -> Callable[[Sequence[str]], Sequence[Any]]:
    """The raw-socket floor of ``make bench`` (``clients/floor_*.py``), its search paced by a
    fixed window."""
    def read(names: Sequence[str]) -> Sequence[Any]:
        from .clients import load

        client = load(key)
        client.timeout = TIMEOUT
        client.open()
        return client.connect_and_read(names)

    return read


# What each reader imports, imported before the clock starts (its own ``import`` is then a
# lookup): a script pays for its imports once, whatever number of names it reads.
MODULES: dict[str, tuple[str, ...]] = {
    "pvflow": ("pvflow.context",), "pvflow-pva": ("pvflow.context",), "pyepics": ("epics",),
    "epicsrs": ("ophyd_epicsrs",), "epicsrs-pva": ("ophyd_epicsrs",),
    "p4p": ("p4p.client.thread",),
    "floor-ca": ("benchmarks.clients.floor_ca",), "floor-pva": ("benchmarks.clients.floor_pva",),
}

READERS: dict[str, Callable[[Sequence[str]], Sequence[Any]]] = {
    "pvflow": read_pvflow,
    "pvflow-pva": read_pvflow_pva,
    "pyepics": read_pyepics,
    "epicsrs": read_epicsrs,
    "epicsrs-pva": read_epicsrs_pva,
    "p4p": read_p4p,
    "floor-ca": read_floor("floor-ca"),
    "floor-pva": read_floor("floor-pva"),
}


def _is_value(value: Any) -> bool:
    return value is not None and not isinstance(value, BaseException)


def main() -> None:
    client, count = sys.argv[1], int(sys.argv[2])
    names = scale_names(count)
    for module in MODULES[client]:
        importlib.import_module(module)
    cpu = time.process_time()
    started = time.perf_counter()
    values = READERS[client](names)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    found = sum(1 for value in values if _is_value(value))
    wrong = sum(1 for index, value in enumerate(values)
                if _is_value(value) and float(value) != float(index))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"client": client, "count": count, "seconds": elapsed, "cpu": cpu,
                      "found": found, "wrong": wrong, "rss_bytes": rss}), flush=True)


if __name__ == "__main__":
    main()
