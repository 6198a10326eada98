"""The benchmark harness end to end, in --quick mode with one client: it runs and prints every row.

No timing is checked: the point is that ``make bench`` still works (IOC start-up, the worker
processes, the flood putter, the report), not how fast anything is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.operations import METRICS

REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(60)
@pytest.mark.parametrize("client, heading", [("caproto", "caproto thread"),
                                             ("floor-pva", "PVA floor")])
def test_quick_run_prints_every_row(tmp_path: Path, client: str, heading: str) -> None:
    output = tmp_path / "bench.json"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--clients", client,
         "--json", str(output)],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=50)
    assert completed.returncode == 0, completed.stderr
    table_lines = [line for line in completed.stdout.splitlines() if line.startswith("| ")]
    assert heading in table_lines[0]
    for metric in METRICS.values():
        assert any(line.startswith(f"| {metric.label} ") for line in table_lines), metric.label
    results = json.loads(output.read_text())["results"][client]
    measured = {key: value for key, value in results.items() if key in METRICS}
    assert set(measured) == set(METRICS)
    assert all(isinstance(value, float) for value in measured.values()), measured


@pytest.mark.timeout(120)
def test_scale_harness_runs_with_two_iocs(tmp_path: Path) -> None:
    plot = tmp_path / "scale.png"
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale", "--counts", "200", "400", "--iocs", "2",
         "--clients", "pvflow", "pvflow-pva", "--plot", str(plot)],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=110)
    assert completed.returncode == 0, completed.stderr
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| 2 IOCs")]
    assert len(rows) == 2 and all("missing" not in row and "WRONG" not in row for row in rows)
    assert plot.stat().st_size > 0
