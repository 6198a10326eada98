"""The plugin folder through Badger's own loader and runner, in a subprocess with a HOME of
its own (Badger's settings live there), against the C softIoc over CA and PVA."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import SoftIoc

ROOT = Path(__file__).resolve().parents[2]


def run(arguments: list[str], home: Path, extra: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **(extra or {}), "HOME": str(home), "QT_QPA_PLATFORM": "offscreen",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                           os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, *arguments], env=environ, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def beam_size(q1: float, q2: float) -> float:
    return math.sqrt((q1 - 0.3) ** 2 + (q2 + 0.2) ** 2 + 0.01)


def test_install_refuses_to_overwrite_edited_files(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    assert run(["-m", "pvflow", "badger", "install", str(plugins)], tmp_path).returncode == 0
    readme = plugins / "interfaces" / "pvflow" / "README.md"
    readme.write_text("edited")
    refused = run(["-m", "pvflow", "badger", "install", str(plugins)], tmp_path)
    assert refused.returncode == 1 and str(readme) in refused.stderr
    assert readme.read_text() == "edited"
    forced = run(["-m", "pvflow", "badger", "install", "--force", str(plugins)], tmp_path)
    assert forced.returncode == 0 and readme.read_text() != "edited"


def test_install_defaults_to_badgers_plugin_root(tmp_path: Path) -> None:
    unset = run(["-m", "pvflow", "badger", "install"], tmp_path)
    assert unset.returncode == 2 and "badger config BADGER_PLUGIN_ROOT" in unset.stderr
    plugins = tmp_path / "configured"
    (tmp_path / ".config").mkdir()
    (tmp_path / ".config" / "config.yaml").write_text(f"BADGER_PLUGIN_ROOT: {plugins}\n")
    installed = run(["-m", "pvflow", "badger", "install"], tmp_path)
    assert installed.returncode == 0, installed.stderr
    assert (plugins / "interfaces" / "pvflow" / "__init__.py").exists()
    assert installed.stderr == ""  # no hint: Badger already looks there


def test_badger_loads_and_runs_the_plugins(machine: SoftIoc, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    installed = run(["-m", "pvflow", "badger", "install", str(plugins)], tmp_path)
    assert installed.returncode == 0, installed.stderr
    assert (plugins / "environments" / "pvflow_example" / "example.db").exists()

    (tmp_path / ".config").mkdir()  # where Badger writes its settings
    loaded = run(["-m", "tests.badger.badger_run", str(plugins)], tmp_path, machine.env)
    assert loaded.returncode == 0, loaded.stderr
    report = json.loads(loaded.stdout.splitlines()[-1])

    assert "pvflow" in report["interfaces"] and "pvflow_example" in report["environments"]
    assert report["interface_class"] == "pvflow.badger.interface.Interface"
    assert report["interface_params"]["read_only"] is False
    assert report["environment_interface"] == ["pvflow"]
    assert report["environment_variables"] == [{"PVFLOW:EXAMPLE:Q1:SET": [-1.0, 1.0]},
                                               {"pva://PVFLOW:EXAMPLE:Q2:SET": [-1.0, 1.0]}]
    observed = report["observed"]
    assert observed["PVFLOW:EXAMPLE:BEAM:SIZE"] == pytest.approx(beam_size(0.5, 0.25))
    assert observed["pva://PVFLOW:EXAMPLE:BEAM:CHARGE"] == pytest.approx(
        100 * math.exp(-beam_size(0.5, 0.25)))

    routine = report["routine"]
    assert len(routine) >= 2  # the initial point and at least one optimiser step
    assert routine[0]["PVFLOW:EXAMPLE:BEAM:SIZE"] == pytest.approx(0.1)  # the optimum
    for point in routine:
        assert point["PVFLOW:EXAMPLE:BEAM:SIZE"] == pytest.approx(beam_size(
            point["PVFLOW:EXAMPLE:Q1:SET"], point["pva://PVFLOW:EXAMPLE:Q2:SET"]))
