"""The codec and transport layers, the Context and the public API stay clean under
`mypy --strict`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).parents[1] / "src" / "pvflow"
STRICT = ["ca", "pva", "io", "errors.py", "reading.py", "compression.py", "arguments.py",
          "context.py", "__init__.py"]


def test_client_core_is_strictly_typed() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental",
                             *(str(SOURCE / part) for part in STRICT)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
