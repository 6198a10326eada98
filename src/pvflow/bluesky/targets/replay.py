"""Send backed-up runs on to a target (what ``pvflow replay`` does).

Each backup file holds whole runs from their start document, so a target receives them as if
live: a store that kept part of such a run replaces it. A file whose runs all went through
is renamed ``*.jsonl.replayed`` (kept, not deleted: it is the only copy until the store is
known to be good); one that fails stays as it is, to be replayed again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .jsonl import SUFFIX, read_documents

logger = logging.getLogger("pvflow.bluesky.replay")

REPLAYED = ".replayed"


@dataclass
class ReplayReport:
    replayed: list[Path] = field(default_factory=list)
    documents: int = 0
    failed: dict[Path, str] = field(default_factory=dict)


def backup_files(directory: Path) -> list[Path]:
    """Backup files not yet replayed, oldest first."""
    return sorted(directory.glob(f"*{SUFFIX}"), key=lambda path: path.stat().st_mtime)


def replay(directory: str | Path, target: Callable[[str, dict[str, Any]], Any]) -> ReplayReport:
    """Send every backup file in ``directory`` to ``target``, in order, file by file."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no backup directory {directory}")
    report = ReplayReport()
    for path in backup_files(directory):
        sent = 0
        try:
            for name, doc in read_documents(path):
                target(name, doc)
                sent += 1
        except Exception as error:
            report.failed[path] = f"document {sent + 1}: {error}"
            logger.error("replay of %s stopped at document %d: %s; the file is kept",
                         path, sent + 1, error)
            continue
        report.documents += sent
        path.rename(path.with_name(path.name + REPLAYED))
        report.replayed.append(path)
    close = getattr(target, "close", None)
    if callable(close):
        close()
    return report
