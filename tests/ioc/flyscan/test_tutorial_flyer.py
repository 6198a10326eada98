"""Acceptance: the fly-scan tutorial's final ``MyFlyer`` runs unchanged against our IOC.

The flyer (plain ophyd, pyepics control layer) runs in its own process with
``RE(bluesky.plans.fly([ifly]))``; the IOC runs in another. The run must yield one event per
scan point, carrying the simulated positions and signal values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pvflow.ioc.flyscan.sim import ScanSettings, positions, signal
from tests.ioc.clients import CaClient
from tests.ioc.ioc_process import ROOT, IocProcess, RepeaterProcess

pytest.importorskip("ophyd")
pytest.importorskip("bluesky")

TUTORIAL = Path(__file__).with_name("tutorial_flyer.py")
POINTS = 25


def run_tutorial(env: dict[str, str]) -> list[tuple[str, dict]]:
    environ = {**os.environ, **env,
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                            os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, str(TUTORIAL)], env=environ, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return [tuple(json.loads(line.removeprefix("DOCUMENT ")))
            for line in result.stdout.splitlines() if line.startswith("DOCUMENT ")]


def test_tutorial_my_flyer_yields_one_event_per_point() -> None:
    # The tutorial's PV names are fixed ('prj:mybusy', ...): the IOC's default prefix.
    ioc = IocProcess(["-m", "pvflow", "ioc", "flyscan"], {"FLYSCAN_PREFIX": "prj:"})
    with ioc, RepeaterProcess(ioc.repeater_port):
        client = CaClient(ioc.epics_env)
        try:
            client.put("prj:fly:points", POINTS)
            client.put("prj:fly:period", 0.02)
            client.put("prj:fly:start", -2.0)
            client.put("prj:fly:end", 4.0)
            client.put("prj:fly:center", 1.0)
            documents = run_tutorial(ioc.epics_env)
            # the IOC's own view of the scan, for comparison
            times = client.read("prj:t_array").data
            nord = client.get("prj:t_array.NORD")
        finally:
            client.close()

    names = [name for name, _ in documents]
    assert names[0] == "start" and names[-1] == "stop"
    assert documents[-1][1]["exit_status"] == "success"
    (descriptor,) = [doc for name, doc in documents if name == "descriptor"]
    assert descriptor["name"] == "ifly"
    assert set(descriptor["data_keys"]) == {"ifly_tArr", "ifly_xArr", "ifly_yArr"}
    assert descriptor["data_keys"]["ifly_xArr"]["source"] == "prj:x_array"

    rows: dict[str, list[float]] = {"ifly_tArr": [], "ifly_xArr": [], "ifly_yArr": []}
    stamps: list[float] = []
    for name, doc in documents:
        if name == "event_page":
            for key in rows:
                rows[key].extend(doc["data"][key])
            stamps.extend(doc["timestamps"]["ifly_xArr"])
        elif name == "event":
            for key in rows:
                rows[key].append(doc["data"][key])
            stamps.append(doc["timestamps"]["ifly_xArr"])

    settings = ScanSettings(points=POINTS, period=0.02, start=-2.0, end=4.0, center=1.0)
    expected_x = positions(settings)
    assert nord == POINTS
    assert len(rows["ifly_xArr"]) == POINTS, "one event per scan point"
    assert rows["ifly_xArr"] == pytest.approx(list(expected_x))
    assert rows["ifly_yArr"] == pytest.approx([signal(settings, x) for x in expected_x])
    # the event timestamps are the IOC's t_array: the wall-clock time of each trigger
    assert stamps == pytest.approx(list(times), abs=1e-6)
    assert all(later > earlier for earlier, later in zip(stamps, stamps[1:]))
