"""Download (once) and unpack the sdists of the installed ophyd and ophyd-async.

Their own test suites are the judge of compatibility, and the sdist is where they live in full
(the wheels lack data files such as ``scaler.db``). Archives are cached under ``.cache/`` in
the repository, so ``make test`` downloads each version once.

    python -m tests.upstream.sdists ophyd ophyd-async     # prints the unpacked directories
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tarfile
from pathlib import Path

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "upstream"


def sdist(distribution: str) -> Path:
    """The unpacked sdist of the installed version of ``distribution``."""
    version = importlib.metadata.version(distribution)
    stem = f"{distribution.replace('-', '_')}-{version}"
    CACHE.mkdir(parents=True, exist_ok=True)
    for candidate in (CACHE / stem, CACHE / f"{distribution}-{version}"):
        if (candidate / "PKG-INFO").exists():
            return candidate
    archives = _archives(distribution, version)
    if not archives:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", f"{distribution}=={version}", "-d", str(CACHE)],
                       check=True)
        archives = _archives(distribution, version)
    if not archives:
        raise FileNotFoundError(f"pip downloaded no sdist of {distribution}=={version} "
                                f"into {CACHE}")
    with tarfile.open(archives[0]) as archive:
        archive.extractall(CACHE, filter="data")
        top = archive.getnames()[0].split("/")[0]
    return CACHE / top


def _archives(distribution: str, version: str) -> list[Path]:
    names = {distribution, distribution.replace("-", "_")}
    return [path for name in names for path in CACHE.glob(f"{name}-{version}.tar.gz")]


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(sdist(name))
