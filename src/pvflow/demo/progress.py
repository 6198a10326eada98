"""Progress bars for the demo's scans (rich): one per run, fed by documents or a monitor."""

from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, \
    TimeElapsedColumn


def progress_bars() -> Progress:
    return Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), transient=False)


class StepProgress:
    """A RunEngine subscriber: a bar per run, advanced by every event of the primary stream
    (step scans; the baseline's readings are not points)."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self._task: Any = None
        self._plan = ""
        self._primary: set[str] = set()

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start":
            self._plan = doc.get("plan_name", "run")
            self._task = self.progress.add_task(self._plan, total=doc.get("num_points"))
        elif name == "descriptor" and doc.get("name") == "primary":
            self._primary.add(doc["uid"])
        elif name == "event" and doc["descriptor"] in self._primary and self._task is not None:
            self.progress.advance(self._task)
        elif name == "stop" and self._task is not None:
            self.progress.update(self._task, description=f"{self._plan}: {doc['exit_status']}")
            self._task = None


class FlyProgress:
    """Follows a fly scan by the controller's point count (the time array's NORD monitor)."""

    def __init__(self, progress: Progress, description: str, points: int):
        self.progress = progress
        self.task = progress.add_task(description, total=points)

    def __call__(self, count: Any) -> None:
        self.progress.update(self.task, completed=int(count))
