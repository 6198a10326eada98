"""`BackgroundWriter`: documents go to their store on a worker thread, never on the
RunEngine's.

    writer = BackgroundWriter(TiledWriter(client), backup_directory="backup")
    RE.subscribe(writer)
    RE(plan)                 # returns as soon as the plan is done, storing or not
    writer.flush()           # wait until everything is stored (or backed up)
    writer.close()           # flush, stop the thread, close the target

Subscribing a store directly makes every scan wait for it: a slow HTTP request or a busy
database stalls the RunEngine between two points. Here ``writer(name, doc)`` only appends to
a queue. The worker takes documents in order; consecutive EventPages of one descriptor that
queued up meanwhile are merged into one (fewer, larger writes: a store pays per request, not
per row). Delivery retries and backs up (see :mod:`pvflow.bluesky.delivery`), so nothing is
lost when the store is down.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections import deque
from pathlib import Path
from typing import Any

from event_model import merge_event_pages

from .delivery import Delivery, DeliveryReport, RetryPolicy, Target

logger = logging.getLogger("pvflow.bluesky.writer")

DEFAULT_MAX_PAGE_ROWS = 10_000


def default_backup_directory() -> Path:
    """``$XDG_DATA_HOME/pvflow/backup`` (``~/.local/share/pvflow/backup``): a place that
    survives reboots, unlike a temporary directory."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "pvflow" / "backup"


class BackgroundWriter:
    """Subscribe it to a RunEngine; it hands documents to ``target`` on its own thread.

    ``max_page_rows`` caps the rows of a merged EventPage; ``retries``, ``backoff`` and
    ``max_backoff`` set the retry policy before a run goes to ``backup_directory``.
    """

    def __init__(self, target: Target, *, backup_directory: str | Path | None = None,
                 retries: int = 5, backoff: float = 0.5, max_backoff: float = 10.0,
                 max_page_rows: int = DEFAULT_MAX_PAGE_ROWS, name: str = "pvflow-writer"):
        if max_page_rows < 1:
            raise ValueError(f"max_page_rows must be at least 1, got {max_page_rows}")
        directory = Path(backup_directory) if backup_directory is not None \
            else default_backup_directory()
        self._delivery = Delivery(target, directory, RetryPolicy(retries, backoff, max_backoff))
        self.max_page_rows = max_page_rows
        self._queue: deque[tuple[str, dict[str, Any]]] = deque()
        self._changed = threading.Condition()
        self._pending = 0  # accepted, not yet delivered or backed up
        self._closing = False
        self._target_closed = False
        self.merged_pages = 0  # pages that went out inside a larger one
        # A daemon thread never holds the process open; instead, exit drains the queue
        # (atexit runs before daemon threads are stopped), so a forgotten close() loses nothing.
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()
        atexit.register(self.close)

    @property
    def backup_directory(self) -> Path:
        return self._delivery.backup_directory

    @property
    def report(self) -> DeliveryReport:
        return self._delivery.report

    @property
    def pending(self) -> int:
        """Documents accepted and not yet stored or backed up."""
        with self._changed:
            return self._pending

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        """Queue one document and return at once (the RunEngine's side)."""
        with self._changed:
            if self._closing:
                raise RuntimeError(f"{self._thread.name}: closed, cannot take the {name} "
                                   "document")
            self._queue.append((name, doc))
            self._pending += 1
            self._changed.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every document so far is stored or backed up; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float | None = None) -> DeliveryReport:
        """Drain the queue, stop the worker, close the target; the report of the session.

        If ``timeout`` runs out first, the worker carries on (it is still draining at
        interpreter exit, see ``__init__``) and the target stays open."""
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            logger.error("%s: close() timed out with %d document(s) still queued; they are "
                         "being stored or backed up in the background", self._thread.name,
                         self.pending)
            return self.report
        atexit.unregister(self.close)
        if not self._target_closed:
            self._target_closed = True
            self._delivery.close()
        report = self.report
        if report.spilled_runs:
            logger.error("%d run(s) are in backup files, not in the store: %s; send them on "
                         "with: %s", len(report.spilled_runs),
                         ", ".join(str(path) for path in report.spilled_runs.values()),
                         self._delivery.replay_command())
        return report

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- worker ----------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._queue or self._closing)
                if not self._queue:
                    return
                name, doc, taken = self._take()
            try:
                self._delivery.deliver(name, doc)
            except Exception:  # the backup itself failed (disk full?): say so, keep going
                logger.critical("could neither store nor back up a %s document", name,
                                exc_info=True)
            with self._changed:
                self._pending -= taken
                self._changed.notify_all()

    def _take(self) -> tuple[str, dict[str, Any], int]:
        """The next document; an EventPage absorbs the pages of its descriptor queued right
        behind it, up to ``max_page_rows`` rows. Called with the lock held."""
        name, doc = self._queue.popleft()
        if name != "event_page":
            return name, doc, 1
        pages = [doc]
        rows = len(doc["seq_num"])
        while self._queue:
            next_name, next_doc = self._queue[0]
            if next_name != "event_page" or next_doc["descriptor"] != doc["descriptor"] \
                    or rows + len(next_doc["seq_num"]) > self.max_page_rows:
                break
            self._queue.popleft()
            pages.append(next_doc)
            rows += len(next_doc["seq_num"])
        if len(pages) > 1:
            self.merged_pages += len(pages) - 1
            merged: dict[str, Any] = dict(merge_event_pages(pages))  # type: ignore[arg-type]
            return name, merged, len(pages)
        return name, doc, 1
