"""``make bench``'s pyepics-script row still runs, on pyepics and on pvflow.epics alike: one
fresh process each, every step measured. No timing is checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_script_runs_every_step_on_both_libraries() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.pyepics_script", "--repetitions", "1"],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=110)
    assert completed.returncode == 0, completed.stderr
    rows = [line for line in completed.stdout.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 5, completed.stdout
    for row in rows:
        step, pyepics, pvflow, ratio = (cell.strip() for cell in row.strip("|").split("|"))
        assert pyepics.endswith(" ms") and pvflow.endswith(" ms"), row
        float(ratio)
