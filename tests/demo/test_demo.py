"""`pvflow demo` end to end, as `make demo` runs it: servers up, scans stored, read back,
summarised and plotted, every process it started gone afterwards, also after Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from pathlib import Path

import pytest

from pvflow import Context
from pvflow.demo.processes import ServerProcess
from tests.ioc.ioc_process import ROOT

pytest.importorskip("tiled")
pytest.importorskip("rich")

PID_LINE = re.compile(r"(\w+) (?:IOC|server) running, pid (\d+)")


def demo(tmp_path: Path, *options: str) -> ServerProcess:
    # the ready line is the first thing it prints: the process runs, its servers are starting
    return ServerProcess([sys.executable, "-m", "pvflow", "demo", "--data",
                          str(tmp_path / "data"), *options], {"COLUMNS": "120"},
                         "starting the simulated beamline", name="pvflow demo", cwd=ROOT,
                         keep_stdin=False, startup_timeout=120)


def started_pids(output: str) -> dict[str, int]:
    return {name: int(pid) for name, pid in PID_LINE.findall(output)}


def assert_gone(pids: dict[str, int]) -> None:
    for name, pid in pids.items():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # the demo waited for its children: no zombie either


@pytest.mark.timeout(300)
def test_quick_demo_stores_reads_back_plots_and_cleans_up(tmp_path) -> None:
    process = demo(tmp_path, "--quick").start()
    try:
        code = process.wait_exit(240)
    finally:
        process.stop()
    output = process.output
    assert code == 0, output[-4000:]
    pids = started_pids(output)
    assert set(pids) == {"detector", "sync", "flyscan", "Tiled"}, output[-4000:]
    assert_gone(pids)
    assert "runs read back from the store" in output
    assert re.search(r"scan\s+│ success", output) and re.search(r"fly_scan\s+│ success", output)
    assert "primary: 50" in output and "primary: 5" in output
    assert "0 in backup files" in output
    plot = tmp_path / "data" / "flyscan.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "data" / "tiled" / "catalog.db").exists()
    assert (tmp_path / "data" / "tiled" / "tables.duckdb").exists()


@pytest.mark.timeout(300)
def test_ctrl_c_during_the_fly_scan_stops_everything(tmp_path) -> None:
    # 10 000 points at 10 ms: 100 s of flying, so the interrupt lands mid-scan
    process = demo(tmp_path, "--step-points", "2", "--fly-points", "10000").start()
    try:
        line = process.wait_for_line("EPICS_CA_ADDR_LIST=", timeout=240)
        addresses = line.split("EPICS_CA_ADDR_LIST='")[1].split("'")[0]
        flying = threading.Event()
        points: list[float] = []

        def counted(value: float) -> None:
            points.append(value)
            if value > 0:
                flying.set()

        with Context({"EPICS_CA_ADDR_LIST": addresses, "EPICS_CA_AUTO_ADDR_LIST": "NO"},
                     timeout=60) as context, \
                context.subscribe("DEMO:FLY:t_array.NORD", counted, form="value"):
            assert flying.wait(240), "the fly scan never started:\n" + process.output[-4000:]
            assert process.process is not None
            process.process.send_signal(signal.SIGINT)
            code = process.wait_exit(120)
    finally:
        process.stop()
    output = process.output
    assert code == 130, output[-4000:]
    assert "interrupted" in output
    assert "runs read back" not in output, "it stopped after the scan, not mid-scan"
    assert max(points) < 10_000, "the fly scan ran to its end after the Ctrl-C"
    pids = started_pids(output)
    assert set(pids) == {"detector", "sync", "flyscan", "Tiled"}
    assert_gone(pids)
