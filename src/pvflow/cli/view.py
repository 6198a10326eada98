"""``pvflow view``: the latest frames of a detector IOC in a matplotlib window (Diss's viewer).

Unlike diss-view, which ran its own detector backend, this is a client: it reads a running
detector IOC over CA or PVA (pvflow's client), so it works from any machine that can
reach the IOC. One panel per (image, channel), titled ``{channel} #{image}``, laid out as Diss
did: images in rows, channels in columns. ``--save frame.png`` writes one figure and exits,
for headless use; without a display that is the only way, and the command says so.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import PVFlowError
from ..storage.series import first_int

Reader = Callable[[str], Any]


def _text(value: Any) -> str:
    """A string PV, or a long string (CHAR waveform), as text."""
    if isinstance(value, str):
        return value
    data = bytes(np.asarray(value, dtype=np.uint8))
    return data.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def make_reader(protocol: str, timeout: float) -> tuple[Reader, Callable[[], None]]:
    """A ``read(name) -> value`` function over ``protocol`` and its closer."""
    from ..context import Context

    context = Context()
    scheme = "pva://" if protocol == "pva" else ""
    return (lambda name: context.get(scheme + name, timeout=timeout)), context.close


def fetch_frames(read: Reader, prefix: str, channels: list[str]) -> dict[str, np.ndarray]:
    """The latest series of every channel as arrays of shape (n_images, width, height)."""
    frames = {}
    for channel in channels:
        sizes = [first_int(read(f"{prefix}{channel}:asize{axis}")) for axis in range(3)]
        flat = np.asarray(read(f"{prefix}{channel}:image")).reshape(-1)
        count = sizes[0] * sizes[1] * sizes[2]
        if flat.size < count:  # nothing published yet: an empty array
            flat = np.zeros(count)
        frames[channel] = flat[:count].reshape(sizes)
    return frames


def draw(figure: Any, frames: dict[str, np.ndarray], title: str, log_scale: bool) -> None:
    """Fill ``figure`` with one panel per (image, channel)."""
    from matplotlib.colors import LogNorm

    figure.clear()
    channels = list(frames)
    rows = max(frame.shape[0] for frame in frames.values())
    for column, channel in enumerate(channels):
        for row in range(frames[channel].shape[0]):
            axes = figure.add_subplot(rows, len(channels), row * len(channels) + column + 1)
            image = np.fliplr(frames[channel][row].T.astype(np.float64))
            norm = LogNorm(vmin=max(1.0, float(np.nanmin(image)) or 1.0),
                           vmax=max(2.0, float(np.nanmax(image)))) if log_scale else None
            axes.imshow(image, norm=norm, interpolation="nearest")
            axes.set_title(f"{channel} #{row}", fontsize=8)
            axes.set_xticks([])
            axes.set_yticks([])
    figure.suptitle(title, fontsize=9)


def run(args: argparse.Namespace) -> int:
    prefix = args.prefix or os.environ.get("DISS_EPICS_PREFIX")
    if not prefix:
        print("pvflow view: give the IOC prefix (or set DISS_EPICS_PREFIX)", file=sys.stderr)
        return 2
    if args.save:
        import matplotlib

        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not args.save and plt.get_backend().lower() == "agg":  # matplotlib found no display
        print("pvflow view: no display: use --save FILE to write the frames to a file",
              file=sys.stderr)
        return 2
    read, close = make_reader(args.protocol, args.timeout)
    try:
        return show(args, prefix, read, plt)
    except (TimeoutError, ConnectionError, PVFlowError) as error:
        print(f"pvflow view: {error}", file=sys.stderr)
        return 1
    finally:
        close()


def show(args: argparse.Namespace, prefix: str, read: Reader, plt: Any) -> int:
    """Draw the frames once into ``--save``, or keep a window up to date."""
    channels = (args.channels.split(",") if args.channels
                else _text(read(f"{prefix}channels")).split(":"))

    def title() -> str:
        state = _text(read(f"{prefix}state"))
        numid = first_int(read(f"{prefix}numid"))
        return f"{prefix}  state={state}  numid={numid}"

    figure = plt.figure(figsize=(3 * len(channels), 3))
    if args.save:
        draw(figure, fetch_frames(read, prefix, channels), title(), args.log)
        figure.savefig(args.save, dpi=100)
        print(args.save)
        return 0
    from matplotlib.animation import FuncAnimation

    def update(_: int) -> None:
        draw(figure, fetch_frames(read, prefix, channels), title(), args.log)

    animation = FuncAnimation(figure, update, interval=int(args.period * 1000),
                              cache_frame_data=False)
    plt.show()
    del animation
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "view", help="show the latest frames of a detector IOC",
        description="Show the latest frames of a running detector IOC (pvflow ioc detector "
                    "or Diss), read over CA or PVA.")
    parser.add_argument("prefix", nargs="?", help="the IOC's prefix, e.g. DISS:det: "
                        "(default: $DISS_EPICS_PREFIX)")
    parser.add_argument("--protocol", choices=("ca", "pva"), default="ca")
    parser.add_argument("--channels", help="comma-separated channels (default: the IOC's "
                        "`channels` PV; needed for Diss, which has none)")
    parser.add_argument("--save", metavar="FILE", help="write one figure to FILE and exit")
    parser.add_argument("--period", type=float, default=0.5, help="refresh period in seconds")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-read timeout, seconds")
    parser.add_argument("--log", action="store_true", help="logarithmic colour scale (as Diss)")
    parser.set_defaults(run=run)
