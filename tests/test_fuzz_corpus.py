"""Every input the fuzzer kept (fuzz/corpus: seeds and inputs that reached new code) still
leaves each decoder within its contract: only the exceptions its callers expect."""

from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.targets import TARGETS, check

CORPUS = Path(__file__).resolve().parents[1] / "fuzz" / "corpus"


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_kept_inputs_stay_within_the_decoders_contract(name: str) -> None:
    inputs = sorted((CORPUS / name).iterdir())
    assert inputs, f"no corpus for {name}: run make fuzz"
    for path in inputs:
        check(name, path.read_bytes())
