"""Getting each document into the target, or else into a backup file: nothing is lost.

Runs on the writer's worker thread, one document at a time, in order. A failing target is
retried with exponential back-off. When the retries run out, the run that document belongs
to goes to a backup: the whole run, from its start document, because a store cannot take
the second half of a run whose first half it never saw (or only partly stored). Later
documents of that run follow it into the same file, so the backup keeps the order, and other
runs still try the target. Every spill is logged at ERROR level with the file and the
command that sends it on later (``pvflow replay``).
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .runs import RunIndex
from .targets.jsonl import JsonLinesTarget, encode

logger = logging.getLogger("pvflow.bluesky.writer")

Target = Callable[[str, dict[str, Any]], Any]
ORPHANS = "orphans.jsonl"  # documents whose run start never came


@dataclass
class DeliveryReport:
    """What happened to the documents so far.

    ``delivered`` counts what the store has confirmed: the documents of runs whose stop
    document it took (a store may buffer rows until then, as Tiled's writer does, and lose
    them if the stop fails), and documents of no run. ``awaiting_stop`` counts documents the
    store took for runs still open; if such a run fails, they go to the backup with it and
    count in ``spilled_documents``. Every document is in exactly one of the three.
    """

    delivered: int = 0
    awaiting_stop: int = 0
    retries: int = 0
    spilled_documents: int = 0
    spilled_runs: dict[str, Path] = field(default_factory=dict)
    target_seconds: float = 0.0  # time spent inside the target


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` more attempts after the first, waiting ``backoff`` seconds, doubling up to
    ``max_backoff``."""

    retries: int = 5
    backoff: float = 0.5
    max_backoff: float = 10.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise ValueError(f"retry policy values must not be negative: {self}")

    def delays(self) -> list[float]:
        return [min(self.backoff * 2 ** attempt, self.max_backoff)
                for attempt in range(self.retries)]


class Delivery:
    """Hands documents to ``target``; keeps each open run's delivered documents until its stop
    is delivered, to be able to back the whole run up."""

    def __init__(self, target: Target, backup_directory: Path, policy: RetryPolicy,
                 sleep: Callable[[float], None] = time.sleep):
        self.target = target
        self.backup_directory = backup_directory
        self.policy = policy
        self.report = DeliveryReport()
        self._sleep = sleep
        self._index = RunIndex()
        self._journals: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        self._backup: JsonLinesTarget | None = None

    def replay_command(self) -> str:
        """The command that sends the backups on: ``pvflow replay`` must be told where to."""
        where = getattr(self.target, "replay_option", None) or "--tiled URI (or --jsonl DIR)"
        return f"pvflow replay {shlex.quote(str(self.backup_directory))} {where}"

    def deliver(self, name: str, doc: dict[str, Any]) -> None:
        run = self._index.run_of(name, doc)
        if run is not None and run in self.report.spilled_runs:
            self._to_backup(run, name, doc)
            return
        error = self._attempt(name, doc)
        if error is None:
            report = self.report
            if run is None:
                report.delivered += 1
            elif name == "stop":  # the store has the whole run now
                confirmed = len(self._journals.pop(run, []))
                report.awaiting_stop -= confirmed
                report.delivered += confirmed + 1
                self._index.forget(run)
            else:
                self._journals.setdefault(run, []).append((name, doc))
                report.awaiting_stop += 1
            return
        self._spill(run, name, doc, error)

    def _attempt(self, name: str, doc: dict[str, Any]) -> BaseException | None:
        delays = self.policy.delays()
        for attempt in range(len(delays) + 1):
            started = time.perf_counter()
            try:
                self.target(name, doc)
                return None
            except Exception as error:
                last = error
                if attempt == len(delays):
                    break
                logger.warning("target %r failed on a %s document (attempt %d of %d): %s; "
                               "retrying in %.3g s", self.target, name, attempt + 1,
                               len(delays) + 1, error, delays[attempt])
                self.report.retries += 1
                self._sleep(delays[attempt])
            finally:
                self.report.target_seconds += time.perf_counter() - started
        return last

    def _spill(self, run: str | None, name: str, doc: dict[str, Any],
               error: BaseException) -> None:
        self.backup_directory.mkdir(parents=True, exist_ok=True)
        if run is None:
            path = self.backup_directory / ORPHANS
            with path.open("a", encoding="utf-8") as file:
                file.write(encode(name, doc))
            self.report.spilled_documents += 1
            logger.error("target %r failed %d times on a %s document of no known run (%s); "
                         "it went to %s", self.target, self.policy.retries + 1, name, error, path)
            return
        backup = self._backup_target()
        self.report.spilled_runs[run] = backup.path_of(run)
        journal = self._journals.pop(run, [])
        for earlier_name, earlier_doc in journal:
            backup(earlier_name, earlier_doc)
        self.report.awaiting_stop -= len(journal)
        self.report.spilled_documents += len(journal)
        self._to_backup(run, name, doc)
        logger.error(
            "target %r failed %d times on the %s document of run %s (%s). The run (%d "
            "documents so far, and the rest of it) goes to the backup %s; send it on later "
            "with: %s", self.target, self.policy.retries + 1, name, run, error,
            len(journal) + 1, backup.path_of(run), self.replay_command())

    def _to_backup(self, run: str, name: str, doc: dict[str, Any]) -> None:
        self._backup_target()(name, doc)
        self.report.spilled_documents += 1
        if name == "stop":
            self._index.forget(run)

    def _backup_target(self) -> JsonLinesTarget:
        if self._backup is None:
            self._backup = JsonLinesTarget(self.backup_directory)
        return self._backup

    def close(self) -> None:
        if self._backup is not None:
            self._backup.close()
        close = getattr(self.target, "close", None)
        if callable(close):
            close()
