"""``pvflow save``: every series a detector IOC publishes, appended to an HDF5 file.

The CAspy recipe of the Diss documentation, built in: wait for each series to be complete
(``acquire`` falls), reshape it with the IOC's size PVs, append it to HDF5. Works with any
Diss-compatible IOC over CA or pvAccess (``--pva``).

    pvflow save DISS:det: --channel ch0 ch1 --to data.h5 [--series 100] [--plot]

Exit codes: 0 after ``--series`` series or Ctrl-C (the file is closed cleanly), 1 when a
series is missing or the IOC goes away (what was saved stays readable), 2 for bad input.

An IOC's database keeps at most one pending update per array or string subscription, and
its servers (rsrv for CA, qsrv for pvAccess) read the value only when they take the update,
under the timestamp of when it was posted: a server thread that falls a series behind sends
a later image under an earlier series' stamp and drops the next update. The next series is
then incomplete, and the one before it is taken back out of the file. The rarer case where
nothing is dropped (the IOC republishes between the server's dequeue and its read) cannot be
seen from the wire.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

EXIT_MISSING, EXIT_USAGE = 1, 2
STOP_CHECK_SECONDS = 0.2


class StopRequest:
    """SIGINT (Ctrl-C) as a flag checked between series, so a series being written is
    finished, never cut in half."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def __enter__(self) -> StopRequest:
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self._previous)


class Progress:
    """One line: series, images, MB and rate; rewritten in place on a terminal, else a new
    line every ``period`` seconds, and sooner (``idle_period``) when the writer has caught
    up, so a slow run shows each series as it is saved."""

    def __init__(self, before: int, stream: Any = sys.stderr, period: float = 1.0,
                 idle_period: float = 0.2) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.period = period
        self.idle_period = idle_period
        self.started = time.monotonic()
        self.last = 0.0
        self.before = before  # images the file held already (appending)

    def show(self, file: Any, numid: int | None, idle: bool, final: bool = False) -> None:
        now = time.monotonic()
        since = now - self.last
        if not (final or since >= self.period or (idle and since >= self.idle_period)):
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        megabytes = file.images * len(file.channels) * np.prod(file.image_shape) \
            * file.dtype.itemsize / 1e6
        rate = (file.images - self.before) / elapsed
        line = (f"saved {file.series} series, {file.images} images per channel, "
                f"{megabytes:.1f} MB, {rate:.1f} images/s, last numid "
                f"{numid if numid is not None else '-'}")
        end = "\n" if final or not self.tty else ""
        self.stream.write(("\r" + line + " " * 4 if self.tty else line) + end)
        self.stream.flush()


class LivePlot:
    """The last saved series in a matplotlib window (the viewer's drawing)."""

    def __init__(self, prefix: str, period: float = 0.5) -> None:
        import matplotlib.pyplot as plt

        self.plt = plt
        self.prefix = prefix
        self.period = period
        self.figure = plt.figure()
        self.last = 0.0
        plt.ion()

    def show(self, series: Any) -> None:
        from .view import draw

        now = time.monotonic()
        if now - self.last < self.period:
            return
        self.last = now
        draw(self.figure, series.images, f"{self.prefix}  numid={series.numid}", False)
        self.plt.pause(0.001)


def _fail(message: str, code: int) -> int:
    print(f"pvflow save: {message}", file=sys.stderr)
    return code


def _check_writable(path: Path) -> str | None:
    if path.is_dir():
        return f"{path} is a directory"
    if path.exists():
        return None if os.access(path, os.W_OK) else f"{path}: not writable"
    parent = path.parent.resolve()
    if not parent.is_dir():
        return f"{path}: no directory {parent}"
    return None if os.access(parent, os.W_OK) else f"{path}: directory {parent} not writable"


def _pixel_type(text: str) -> str:
    try:
        kind = np.dtype(text).kind
    except TypeError:
        kind = ""
    if not kind or kind not in "iuf":
        raise argparse.ArgumentTypeError(f"{text!r} is not a numeric pixel type (uint16, "
                                         "int32, float64, ...)")
    return text


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def _names(values: list[str] | None) -> list[str]:
    """``--channel a b`` and ``--channel a,b`` alike."""
    return [name for value in values or () for name in value.split(",") if name]


def run(args: argparse.Namespace) -> int:
    from ..context import Context
    from ..errors import PVFlowError
    from ..storage.detector_source import DetectorSetupError, DetectorSource, read_layout
    from ..storage.series import SeriesError
    from ..storage.series_file import SeriesFile

    path = Path(args.to)
    problem = _check_writable(path)
    if problem:
        return _fail(problem, EXIT_USAGE)
    with Context(timeout=args.timeout) as context:
        try:
            layout = read_layout(context, args.prefix, _names(args.channel), pva=args.pva,
                                 params=_names(args.param) or None, timeout=args.timeout)
            dtype = np.dtype(args.dtype or layout.pixel_type or
                             np.asarray(context.get(layout.pv(f"{layout.channels[0]}:image"))
                                        ).dtype)
        except (DetectorSetupError, PVFlowError) as exc:
            return _fail(str(exc), EXIT_USAGE)
        try:
            file = SeriesFile(path, layout.channels, layout.image_shape, dtype,
                              compression=args.compress, params=layout.params,
                              attrs={"detector_prefix": layout.prefix,
                                     "protocol": "pva" if args.pva else "ca"})
        except (OSError, SeriesError) as exc:
            return _fail(f"cannot write {path}: {exc}", EXIT_USAGE)
        # The images on a circuit of their own: CA servers sample array and string monitors
        # when they send them, so small PVs queued behind a big image would go out late,
        # carrying the next series' values (rsrv), and the series would be incomplete.
        with Context(timeout=args.timeout) as images:
            return _save(args, layout, file, DetectorSource(context, layout,
                                                            image_context=images))


def _save(args: argparse.Namespace, layout: Any, file: Any, source: Any) -> int:
    from ..storage.series import IncompleteSeriesError, SeriesError
    from ..storage.series_file import WriteRefusedError

    progress = Progress(file.images)
    plot = LivePlot(layout.prefix) if args.plot else None
    saved = 0
    try:
        with source:
            source.wait_subscribed(args.timeout)
            print(f"saving {', '.join(layout.channels)} of {layout.prefix} "
                  f"({layout.num_images} x {layout.width} x {layout.height} {file.dtype}) to "
                  f"{file.path}; Ctrl-C to stop", file=sys.stderr, flush=True)
            with StopRequest() as stop:
                while not stop.requested and (args.series is None or saved < args.series):
                    series = source.next_series(timeout=STOP_CHECK_SECONDS)
                    if series is None:
                        progress.show(file, source.last_numid, idle=False)
                        continue
                    file.append(series)
                    saved += 1
                    progress.show(file, series.numid, idle=source.idle)
                    if plot is not None:
                        plot.show(series)
    except KeyboardInterrupt:
        pass
    except IncompleteSeriesError as exc:
        dropped = ""
        if saved and (exc.numid is None or exc.numid == source.last_numid + 1):
            file.retract_last()
            dropped = (f" (and not series {source.last_numid}: the IOC's server read its "
                       "update of that PV after the next series had replaced it)")
        return _fail(f"{exc}; {file.path} holds the {file.series} series before it{dropped}",
                     EXIT_MISSING)
    except SeriesError as exc:
        return _fail(f"{exc}; {file.path} holds the {file.series} series before it",
                     EXIT_MISSING)
    except OSError as exc:  # a full disk, a vanished mount
        _fail(f"cannot write {file.path}: {exc}; the {file.series} series saved before it "
              "are readable", EXIT_MISSING)
        if isinstance(exc, WriteRefusedError):
            # As the last flush left it, the file is whole; closing must not write, and if
            # even that failed HDF5 would still hold the file at exit (series_file.py)
            file.close()
            os._exit(EXIT_MISSING)
        return EXIT_MISSING
    finally:
        progress.show(file, source.last_numid, idle=True, final=True)
        file.close()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "save", help="save every image series of a detector IOC to HDF5",
        description="Append every series a Diss-compatible detector IOC publishes to an "
                    "HDF5 file: one dataset per channel, one chunk per image, with series "
                    "ids, start times, exposures and channel parameters beside it.")
    parser.add_argument("prefix", help="the IOC's prefix, e.g. DISS:det:")
    parser.add_argument("--channel", nargs="+", metavar="LABEL",
                        help="channels to save (default: all, from the IOC's `channels` PV; "
                             "needed for Diss, which has none)")
    parser.add_argument("--to", required=True, metavar="FILE.h5",
                        help="HDF5 file, created or appended to")
    parser.add_argument("--series", type=_positive, metavar="N", help="stop after N series")
    parser.add_argument("--pva", action="store_true", help="read over pvAccess (default CA)")
    parser.add_argument("--compress", choices=("lz4", "bslz4"),
                        help="compress each image (hdf5plugin filters)")
    parser.add_argument("--dtype", type=_pixel_type,
                        help="pixel type in the file (default: the waveform's FTVL, or the "
                             "type the first image comes as)")
    parser.add_argument("--param", nargs="+", metavar="NAME",
                        help="channel parameters to record (default: enerj and "
                             "threshold_energy where the IOC has them)")
    parser.add_argument("--plot", action="store_true", help="show the last series live")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds to wait for the IOC to answer")
    parser.set_defaults(run=run)
