"""`fly_scan`: configure a busy-record fly scan, fly it and return the run's uid.

A flyer with flat data keys (``nested`` false or absent, as ophyd-async flyers) gets its
stream pre-declared (``declare_stream(..., collect=True)``), so the descriptor is out before
the scan starts; a nested one (``{stream: data_keys}``) is collected as ``bluesky.plans.fly``
does.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import bluesky.plan_stubs as bps
import bluesky.preprocessors as bpp
from bluesky.utils import Msg


def fly_scan(flyer: Any, *, points: int | None = None, start: float | None = None,
             end: float | None = None, period: float | None = None,
             md: Mapping[str, Any] | None = None) -> Generator[Msg, Any, str]:
    """Fly ``flyer`` once with the given settings (those left None keep their value).

    The settings are written before the run opens (``prepare``: the flyer writes them and
    checks they were taken), so the descriptor's configuration holds the values the scan ran
    with. Returns the run uid.
    """
    settings = {name: value for name, value in
                (("points", points), ("start", start), ("end", end), ("period", period))
                if value is not None}
    if settings:
        yield from bps.prepare(flyer, settings, wait=True)
    stream = getattr(flyer, "stream_name", "primary")
    metadata = {"plan_name": "fly_scan", "detectors": [flyer.name],
                "plan_args": {"flyer": repr(flyer), **settings}, **(md or {})}
    if points is not None:
        metadata.setdefault("num_points", points)
    uid: str = yield from bps.open_run(metadata)
    nested = getattr(flyer, "nested", False)
    if not nested:
        yield from bps.declare_stream(flyer, name=stream, collect=True)
    yield from bps.kickoff(flyer, wait=True)
    yield from bps.complete(flyer, wait=True)
    yield from bps.collect(flyer, name=None if nested else stream)
    yield from bps.close_run()
    return uid


def fly_detector(detector: Any, *, series: int, duration: float = 0.0,
                 flush_period: float = 0.5,
                 md: Mapping[str, Any] | None = None) -> Generator[Msg, Any, str]:
    """Fly a ``StandardDetector`` (e.g. :class:`~pvflow.bluesky.diss_detector.DissDetector`)
    through ``series`` acquisitions of ``duration`` seconds per image, collecting its stream
    documents while it runs. The detector is unstaged (its file closed) before the run
    closes. Returns the run uid."""
    from ophyd_async.core import TriggerInfo

    metadata = {"plan_name": "fly_detector", "detectors": [detector.name],
                "num_points": series, "plan_args": {"series": series, "duration": duration},
                **(md or {})}

    @bpp.stage_decorator([detector])
    def fly() -> Generator[Msg, Any, None]:
        yield from bps.prepare(detector, TriggerInfo(number_of_events=series,
                                                     livetime=duration), wait=True)
        yield from bps.declare_stream(detector, name="primary", collect=True)
        yield from bps.kickoff(detector, wait=True)
        yield from bps.collect_while_completing([detector], [detector], flush_period)

    uid: str = yield from bps.open_run(metadata)
    yield from fly()
    yield from bps.close_run()
    return uid
