"""What the demo reads back from the store: a table of its runs and a plot of the fly scan.

Everything here comes from Tiled, not from the RunEngine's memory: the point of the demo is
that the documents reached the store whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class RunSummary:
    uid: str
    plan: str
    exit_status: str
    duration: float
    points: Mapping[str, int]  # stream name -> rows


def stream_table(run: Any, stream: str) -> Any:
    """The stream's rows as a pandas DataFrame (TiledWriter stores them in ``internal``)."""
    return run[stream].base["internal"].read()


def read_back(client: Any, uids: Sequence[str]) -> list[RunSummary]:
    summaries = []
    for uid in uids:
        run = client[uid]
        start, stop = run.metadata["start"], run.metadata.get("stop") or {}
        points = {stream: len(stream_table(run, stream)) for stream in run}
        summaries.append(RunSummary(uid, start.get("plan_name", "?"),
                                    stop.get("exit_status", "(no stop document)"),
                                    stop.get("time", start["time"]) - start["time"], points))
    return summaries


def print_summary(console: Console, summaries: Sequence[RunSummary],
                  io_seconds: Mapping[str, float]) -> None:
    table = Table(title="runs read back from the store")
    for column, justify in (("run", "left"), ("plan", "left"), ("status", "left"),
                            ("stream: points", "left"), ("run s", "right"),
                            ("PV I/O s", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for summary in summaries:
        streams = "\n".join(f"{name}: {rows}" for name, rows in summary.points.items())
        table.add_row(summary.uid[:8], summary.plan, summary.exit_status, streams,
                      f"{summary.duration:.2f}", f"{io_seconds.get(summary.uid, 0.0):.3f}")
    console.print(table)


def check_images(console: Console, client: Any, uid: str, detector: str, channel: str,
                 published: Any) -> None:
    """Read the detector's images of run ``uid`` back from Tiled (the HDF5 file the detector
    wrote, through Tiled) and compare the last series with what the IOC published."""
    import hashlib

    import numpy as np

    images = client[uid]["primary"][f"{detector}-{channel}"].read()
    flat = np.asarray(published).reshape(-1)
    last = images[-(flat.size // int(np.prod(images.shape[1:]))):]

    def digest(array: Any) -> str:
        return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:12]

    same = last.dtype == flat.dtype and digest(last) == digest(flat.reshape(last.shape))
    console.print(f"images read back from Tiled: {detector}-{channel} {images.shape} "
                  f"{images.dtype}, last series sha256 {digest(last)}, "
                  + ("[green]the same as the IOC published[/]" if same
                     else f"[red]the IOC published {digest(flat)}[/]"))


def plot_fly_scan(client: Any, uid: str, stream: str, x_key: str, y_key: str,
                  path: Path) -> Path:
    """Signal against position of the fly scan, as stored, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = stream_table(client[uid], stream)
    figure, axes = plt.subplots(figsize=(7, 4), dpi=100)
    axes.plot(rows[x_key], rows[y_key], ".-", markersize=3)
    axes.set_xlabel(f"{x_key} (mm)")
    axes.set_ylabel(y_key)
    axes.set_title(f"fly scan {uid[:8]}: {len(rows)} points read back from Tiled")
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
