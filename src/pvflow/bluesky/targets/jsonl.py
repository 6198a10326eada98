"""JSON lines: one file per run, one ``[name, doc]`` line per document, in order.

The portable format (any language reads it, ``suitcase-jsonl`` writes the same lines) and the
format of the writer's backups, so a backup is itself a valid store and ``pvflow replay``
reads both.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..runs import RunIndex

SUFFIX = ".jsonl"


def _plain(value: Any) -> Any:
    """numpy values (page columns may be arrays) as JSON types."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} {value!r} as JSON")


def encode(name: str, doc: dict[str, Any]) -> str:
    """One line, newline included."""
    return json.dumps([name, doc], default=_plain, allow_nan=True) + "\n"


def read_documents(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """The documents of one JSON lines file, in order; a damaged line is an error naming the
    file and line."""
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                name, doc = json.loads(line)
            except ValueError as error:
                raise ValueError(f"{path}:{number}: not a [name, document] line: {error}") from None
            yield name, doc


class JsonLinesTarget:
    """Writes each run to ``<directory>/<run uid>.jsonl``; ``fsync`` at every stop document,
    so a finished run is on disk before it counts as stored."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._index = RunIndex()
        self._files: dict[str, IO[str]] = {}

    def path_of(self, run: str) -> Path:
        return self.directory / f"{run}{SUFFIX}"

    @property
    def replay_option(self) -> str:
        """How ``pvflow replay`` names this store."""
        return f"--jsonl {shlex.quote(str(self.directory))}"

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        run = self._index.run_of(name, doc)
        if run is None:
            raise ValueError(f"{name} document {doc.get('uid', '')!r} belongs to no run this "
                             "target has seen (its start document never came)")
        if name == "start":  # a run (re)starts from scratch: replace what a file holds
            self._close(run)
            self._files[run] = self.path_of(run).open("w", encoding="utf-8")
        file = self._files.get(run)
        if file is None:
            file = self._files[run] = self.path_of(run).open("a", encoding="utf-8")
        file.write(encode(name, doc))
        if name == "stop":
            self._close(run, sync=True)
            self._index.forget(run)

    def _close(self, run: str, sync: bool = False) -> None:
        file = self._files.pop(run, None)
        if file is not None:
            if sync:
                file.flush()
                os.fsync(file.fileno())
            file.close()

    def close(self) -> None:
        for run in list(self._files):
            self._close(run, sync=True)
