"""``python -m benchmarks.scale``: fresh connect+read of many PVs, one IOC and many IOCs.

For every layout (N records on one IOC, the same N spread over 20 IOCs, names interleaved)
each client reads the first N names in a fresh process of its own (``scale_worker.py``),
against the very same IOC processes, one client after another. The table gives every pvflow
cell as a ratio to the peers of its protocol (libca through pyepics' ``caget_many`` and
ophyd-epicsrs for CA; ophyd-epicsrs and p4p for pvAccess) and to the raw-socket floor of its
protocol (``clients/floor_*.py``: what the IOCs allow a bare Python program), with the names
found, the client's CPU time and its resident memory per channel; a PNG plots time against N
for every client.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .scale_ioc import ScaleServers

REPOSITORY = Path(__file__).resolve().parent.parent
CLIENTS = ["pvflow", "pyepics", "epicsrs", "pvflow-pva", "epicsrs-pva", "p4p", "floor-ca",
           "floor-pva"]
RATIOS = [("pvflow", "pyepics"), ("pvflow", "epicsrs"), ("pvflow-pva", "epicsrs-pva"),
          ("pvflow-pva", "p4p"), ("pvflow", "floor-ca"), ("pvflow-pva", "floor-pva")]
LIMIT_SECONDS = 180.0


def run_client(client: str, count: int, environment: dict[str, str]) -> dict[str, Any]:
    """One fresh process; a client that fails or overruns gets its error in place of numbers."""
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "benchmarks.scale_worker", client, str(count)],
            cwd=REPOSITORY, env={**os.environ, **environment}, stdin=subprocess.DEVNULL,
            capture_output=True, text=True, timeout=LIMIT_SECONDS)
    except subprocess.TimeoutExpired:
        return {"error": f"over {LIMIT_SECONDS:.0f} s"}
    lines = completed.stdout.strip().splitlines()
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail[:120]}
    return json.loads(lines[-1])


def measure(counts: list[int], iocs: int, clients: list[str]) -> dict[str, dict[int, Any]]:
    results: dict[str, dict[int, Any]] = {client: {} for client in clients}
    with ScaleServers(max(counts), iocs) as servers:
        for count in counts:
            for client in clients:
                result = run_client(client, count, servers.environment)
                results[client][count] = result
                print(f"  {iocs} IOC(s), {count} names, {client}: {_cell(result)}",
                      file=sys.stderr, flush=True)
    return results


def _cell(result: dict[str, Any]) -> str:
    if "error" in result:
        return result["error"]
    missing = result["count"] - result["found"]
    lost = f", {missing} missing" if missing else ""
    wrong = f", {result['wrong']} WRONG" if result["wrong"] else ""
    return f"{result['seconds']:.2f} s (CPU {result['cpu']:.2f} s{lost}{wrong})"


def _seconds(result: dict[str, Any] | None) -> float | None:
    if not result or "error" in result or result["found"] != result["count"]:
        return None
    return float(result["seconds"])


def table(layouts: dict[int, dict[str, dict[int, Any]]], counts: list[int]) -> str:
    header = ["layout", "N", *CLIENTS, *[f"{a} / {b}" for a, b in RATIOS]]
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for iocs, results in layouts.items():
        for count in counts:
            cells = [f"{iocs} IOC" + ("s" if iocs > 1 else ""), f"{count:,}"]
            for client in CLIENTS:
                result = results.get(client, {}).get(count)
                seconds = _seconds(result)
                cells.append(f"{seconds:.2f} s" if seconds is not None
                             else (_cell(result) if result else "-"))
            for mine, peer in RATIOS:
                a = _seconds(results.get(mine, {}).get(count))
                b = _seconds(results.get(peer, {}).get(count))
                cells.append(f"{a / b:.2f}" if a is not None and b else "-")
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def memory(layouts: dict[int, dict[str, dict[int, Any]]], count: int) -> str:
    """Peak resident memory per channel of each client's process at ``count`` names."""
    rows = ["| layout | " + " | ".join(CLIENTS) + " |", "|" + "---|" * (len(CLIENTS) + 1)]
    for iocs, results in layouts.items():
        cells = []
        for client in CLIENTS:
            result = results.get(client, {}).get(count)
            cells.append(f"{result['rss_bytes'] / count / 1024:.1f} KiB"
                         if result and "error" not in result else "-")
        rows.append(f"| {iocs} IOC(s), {count:,} names | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def linearity(layouts: dict[int, dict[str, dict[int, Any]]], counts: list[int]) -> list[str]:
    if len(counts) < 2:
        return []
    small, large = counts[-2], counts[-1]
    lines = []
    for iocs, results in layouts.items():
        for client in ("pvflow", "pvflow-pva"):
            a = _seconds(results.get(client, {}).get(small))
            b = _seconds(results.get(client, {}).get(large))
            if a and b:
                lines.append(f"{client}, {iocs} IOC(s): {large:,} names take {b / a:.2f}x the "
                             f"time of {small:,} (x{large / small:.1f} names)")
    return lines


def plot(layouts: dict[int, dict[str, dict[int, Any]]], counts: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, len(layouts), figsize=(6 * len(layouts), 4.5),
                                   squeeze=False)
    for axis, (iocs, results) in zip(axes[0], layouts.items()):
        for client in CLIENTS:
            points = [(count, _seconds(results.get(client, {}).get(count))) for count in counts]
            points = [(count, seconds) for count, seconds in points if seconds is not None]
            if points:
                axis.plot(*zip(*points), marker="o", label=client)
        axis.set_title(f"fresh connect+read, {iocs} IOC(s)")
        axis.set_xlabel("PVs")
        axis.set_ylabel("seconds")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--iocs", type=int, nargs="+", default=[1, 20])
    parser.add_argument("--clients", nargs="+", default=CLIENTS, choices=CLIENTS)
    parser.add_argument("--plot", type=Path, default=Path("scale.png"))
    arguments = parser.parse_args()
    layouts = {iocs: measure(arguments.counts, iocs, arguments.clients)
               for iocs in arguments.iocs}
    print(table(layouts, arguments.counts))
    print()
    print("Resident memory per channel (peak of the process, imports included):")
    print(memory(layouts, max(arguments.counts)))
    for line in linearity(layouts, arguments.counts):
        print(line)
    plot(layouts, arguments.counts, arguments.plot)
    print(f"plot: {arguments.plot}")


if __name__ == "__main__":
    main()
