"""The release artefacts: `python -m build` makes a wheel and an sdist (the wheel is built from
the sdist, so both are proven), and the wheel installs into a fresh venv, without this checkout
on the path, where `import pvflow` and the `pvflow` command work against a real softIoc."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("src", "pyproject.toml", "README.md", "LICENSE")

pytest.importorskip("build")


def run(*command: str | Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """A wheel and an sdist, built from a copy of the checkout (the build writes egg-info)."""
    tree = tmp_path_factory.mktemp("tree")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.egg-info"))
        else:
            shutil.copy(source, tree / name)
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, tree)
    return out


def test_the_sdist_and_the_wheel_carry_the_licence_and_the_type_marker(dist) -> None:
    (sdist,) = dist.glob("pvflow-*.tar.gz")
    (wheel,) = dist.glob("pvflow-*-py3-none-any.whl")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "pyproject.toml", "src/pvflow/py.typed"} <= names
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = next(archive.read(name).decode() for name in names
                        if name.endswith(".dist-info/METADATA"))
    assert "pvflow/py.typed" in names and any(name.endswith("licenses/LICENSE") for name in names)
    assert "License-Expression: BSD-3-Clause" in metadata


def test_the_wheel_works_in_a_fresh_venv(dist, tmp_path, softioc) -> None:
    (wheel,) = dist.glob("pvflow-*-py3-none-any.whl")
    home = tmp_path / "venv"
    venv.create(home, with_pip=False, system_site_packages=False)
    bin_dir = home / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    # the outer pip installs into the new venv: the wheel and its two dependencies (which
    # have none of their own), nothing else
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
        "--disable-pip-version-check", "--no-deps", wheel, "numpy", "lz4")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(softioc.env)
    where = run(python, "-c", "import pvflow; print(pvflow.__file__, pvflow.__version__)",
                env=env)
    assert where.startswith(str(home)), where
    assert run(bin_dir / "pvflow", "--version", env=env).strip() == \
        f"pvflow {where.split()[1]}"
    assert run(bin_dir / "pvflow", "get", "T:ai", "T:enum", env=env).splitlines() == \
        ["T:ai 1.5", "T:enum zero"]
