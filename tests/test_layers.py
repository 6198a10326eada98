"""The layer contracts of ``.importlinter`` hold: layers import downward only, codecs do no
I/O, integrations reach the engines only through the Context, applications (IOCs, command
line, demo) never import transport internals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).parents[1]


def test_import_contracts_are_kept() -> None:
    command = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(command), "--no-cache"], cwd=REPOSITORY, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
