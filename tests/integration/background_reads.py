"""Threads reading PVs over and over while a test works on the same circuits."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping
from typing import Any


@contextlib.contextmanager
def reading_meanwhile(context: Any, expected: Mapping[str, object],
                      threads: int = 3) -> Iterator[list[tuple[str, object]]]:
    """``threads`` threads ``get`` every name of ``expected`` until the block ends; yields
    the reads that gave another value than expected, as ``(name, value)``."""
    wrong: list[tuple[str, object]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            for name, value in expected.items():
                seen = context.get(name)
                if seen != value:
                    wrong.append((name, seen))

    readers = [threading.Thread(target=read) for _ in range(threads)]
    for reader in readers:
        reader.start()
    try:
        yield wrong
    finally:
        stop.set()
        for reader in readers:
            reader.join(30)
