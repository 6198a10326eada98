"""``make fuzz``: every target for a bounded time (``FUZZ_SECONDS``, default 60 each).

Prints, per target, the inputs tried, the corpus size and any crash. The corpus lives in
``fuzz/corpus/<target>/``; after a run it is merged down to the inputs that add coverage, and
``tests/test_fuzz_corpus.py`` replays it in the normal suite.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from fuzz.seeds import seeds
from fuzz.targets import TARGETS

HERE = Path(__file__).parent
CORPUS = HERE / "corpus"
KEEP = 20  # new inputs added to the kept corpus per run and target


def _seed(name: str) -> Path:
    directory = CORPUS / name
    directory.mkdir(parents=True, exist_ok=True)
    for index, data in enumerate(seeds()[name]):
        (directory / f"seed-{index}").write_bytes(data)
    return directory


def _run(name: str, seconds: int) -> tuple[int, bool, str]:
    corpus = _seed(name)
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run([sys.executable, "-m", "fuzz.run_one", name, str(seconds),
                                 scratch, str(corpus)], capture_output=True, text=True,
                                cwd=HERE.parent, env=os.environ)
        # every input libFuzzer kept reached new code when found; the smallest few join the
        # corpus (libFuzzer's -merge would re-run this script as an executable, which it is not)
        found = sorted(Path(scratch).iterdir(), key=lambda path: path.stat().st_size)
        for path in found[:KEEP]:
            shutil.copy(path, corpus / f"found-{path.name[:16]}")
    runs = re.search(r"stat::number_of_executed_units:\s*(\d+)", result.stderr)
    crashed = result.returncode != 0
    return (int(runs.group(1)) if runs else 0), crashed, result.stderr[-3000:] if crashed else ""


def main(names: list[str]) -> int:
    seconds = int(os.environ.get("FUZZ_SECONDS", "60"))
    failed = False
    print(f"{'target':<14} {'inputs':>12} {'corpus':>7}  result")
    for name in names or list(TARGETS):
        runs, crashed, tail = _run(name, seconds)
        size = len(list((CORPUS / name).iterdir()))
        print(f"{name:<14} {runs:>12,} {size:>7}  {'CRASH' if crashed else 'ok'}", flush=True)
        if crashed:
            failed = True
            print(tail, file=sys.stderr)
    if not failed:
        shutil.rmtree(HERE / "crashes", ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
