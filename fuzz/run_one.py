"""One target under atheris (libFuzzer): ``python -m fuzz.run_one NAME SECONDS CORPUS``.

pvflow's modules are instrumented for coverage; the corpus directory gains the inputs that
reached new code; a crash is written to ``fuzz/crashes/`` and ends the run.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["pvflow"]):
    from fuzz.targets import check

CRASHES = Path(__file__).parent / "crashes"


def main() -> None:
    name, seconds, corpus = sys.argv[1], sys.argv[2], sys.argv[3]
    CRASHES.mkdir(exist_ok=True)
    logging.disable(logging.CRITICAL)  # circuits log what they drop: noise, and slow

    def one_input(data: bytes) -> None:
        check(name, data)

    atheris.Setup([sys.argv[0], corpus, f"-max_total_time={seconds}", "-print_final_stats=1",
                   "-rss_limit_mb=3000", "-timeout=20", "-max_len=8192",
                   f"-artifact_prefix={CRASHES}/{name}-", *sys.argv[4:]], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
