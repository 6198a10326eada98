"""Run one benchmark worker in a fresh process and read the JSON line it prints.

Connection benchmarks are only "cold" once per process, so each sample is a new interpreter;
a worker that fails or hangs costs only its own sample.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent


def run_worker(module: str, arguments: list[str], environment: dict[str, str],
               limit_seconds: float) -> tuple[Any, str]:
    """``(result, "")`` with the last JSON line ``python -m module --worker ...`` printed, or
    ``(None, "error: ...")``."""
    try:
        done = subprocess.run([sys.executable, "-m", module, "--worker", *arguments],
                              cwd=REPOSITORY, env=environment, capture_output=True, text=True,
                              timeout=limit_seconds)
    except subprocess.TimeoutExpired:
        return None, f"error: timed out after {limit_seconds:.0f} s"
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return None, "error: " + (done.stderr.strip().splitlines() or ["no output"])[-1]
    return json.loads(lines[-1]), ""
