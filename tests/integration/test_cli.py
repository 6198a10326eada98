"""`pvflow get|put|monitor|info` as a user runs them: a subprocess with the EPICS variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def pvflow(softioc, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pvflow", *arguments], capture_output=True,
                          text=True, env={**os.environ, **softioc.env}, timeout=60)


def test_get_json(softioc) -> None:
    result = pvflow(softioc, "get", "--json", "--form", "ctrl", "T:ai")
    assert result.returncode == 0, result.stderr
    reading = json.loads(result.stdout)
    assert (reading["name"], reading["units"], reading["precision"]) == ("T:ai", "mm", 3)


def test_put_then_get(softioc) -> None:
    result = pvflow(softioc, "put", "T:long", "123")
    assert result.returncode == 0, result.stderr
    assert "New : T:long 123" in result.stdout
    assert pvflow(softioc, "get", "T:long").stdout.strip() == "T:long 123"


def test_put_array(softioc) -> None:
    assert pvflow(softioc, "put", "T:shorts", "1", "2", "3").returncode == 0
    assert pvflow(softioc, "get", "T:shorts").stdout.strip() == "T:shorts 3 1 2 3"


def test_monitor_prints_updates(softioc) -> None:
    result = pvflow(softioc, "monitor", "-n", "1", "--json", "T:string")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["value"] == "hello"


def test_info(softioc) -> None:
    result = pvflow(softioc, "info", "T:wave")
    assert "Native type:   DBF_DOUBLE" in result.stdout and "Element count: 1000" in result.stdout


def test_errors_name_the_pv_and_exit_non_zero(softioc) -> None:
    result = pvflow(softioc, "get", "--timeout", "0.5", "T:ai", "T:nowhere")
    assert result.returncode == 1
    assert "T:ai 1.5" in result.stdout and "T:nowhere" in result.stderr
    bad = pvflow(softioc, "put", "T:long", "not-a-number")
    assert bad.returncode == 1 and "T:long" in bad.stderr and "not a number" in bad.stderr
