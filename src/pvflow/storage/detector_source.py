"""Whole series from a running Diss-compatible detector IOC, over CA or pvAccess.

    with DetectorSource(context, "DISS:det:", pva=True) as source:
        series = source.next_series(timeout=10)      # SeriesData, or None on timeout

Only the PVs Diss documents are used: ``acquire``, ``numid``, ``uuid``, ``start_ts``,
``acq_td``, ``{ch}:image`` and ``{ch}:asize0..2`` (pvflow's ``channels`` PV when no channels
are given). Monitors deliver every update in order; :class:`.SeriesAssembler` pairs them by
timestamp. A lost connection, a full monitor queue or a gap in the series ids is a
:class:`.SeriesError` naming the series concerned: the caller stops, what it saved is whole.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..context import Context
from ..errors import PVFlowError
from .assembler import ACQUIRE, SeriesAssembler, Window
from .series import SeriesData, SeriesError, first_int

SERIES_KEYS = ("numid", "uuid", "start_ts", "acq_td")
# a waveform's FTVL as a numpy type (CA sends CHAR arrays as unsigned bytes)
FTVL_TYPES = {"CHAR": "uint8", "UCHAR": "uint8", "SHORT": "int16", "USHORT": "uint16",
              "LONG": "int32", "ULONG": "uint32", "INT64": "int64", "UINT64": "uint64",
              "FLOAT": "float32", "DOUBLE": "float64"}
UNSIGNED_OVER_CA = ("uint16", "uint32")
# Channel parameters of the known Diss backends (sim, eiger); probed when none are given.
KNOWN_PARAMS = ("enerj", "threshold_energy")
# How long a fall may wait for its series' updates before the window is decided as it is.
SETTLE_SECONDS = 5.0
MONITOR_QUEUE = 100_000
# pvAccess: images the IOC may hold for us while we catch up (shared buffers, no copies)
IMAGE_SERVER_QUEUE = 64
INTERRUPT = "interrupt"  # an inbox key no PV update uses


class DetectorSetupError(PVFlowError):
    """The IOC is not there, or is not what was asked for (a channel it lacks)."""


@dataclass(frozen=True)
class DetectorLayout:
    """What the IOC says about itself: channels, series size, pixel type as received."""

    prefix: str
    channels: tuple[str, ...]
    num_images: int
    width: int
    height: int
    params: dict[str, tuple[str, ...]]
    scheme: str = ""  # "" (CA) or "pva://"
    # CA: the images' numpy type from the waveform's FTVL (None: not readable, as on Diss's
    # own IOC); unsigned ones are asked for as the signed CA type of their size
    pixel_type: str | None = None

    def pv(self, suffix: str) -> str:
        return f"{self.scheme}{self.prefix}{suffix}"

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.width, self.height

    @property
    def unsigned_images(self) -> str | None:
        """The type to subscribe to images as over CA, when their FTVL is unsigned: CA has
        no unsigned types, and the server would send an unsigned short array as LONG."""
        return self.pixel_type if self.pixel_type in UNSIGNED_OVER_CA else None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    data = bytes(np.asarray(value, dtype=np.uint8))
    return data.split(b"\0", 1)[0].decode("utf-8", errors="replace")


def read_layout(context: Context, prefix: str, channels: Sequence[str] | None = None, *,
                pva: bool = False, params: Sequence[str] | None = None,
                timeout: float = 5.0) -> DetectorLayout:
    """Ask the IOC for its channels and sizes; :class:`DetectorSetupError` naming what is
    missing otherwise."""
    scheme = "pva://" if pva else ""
    protocol = "pvAccess" if pva else "Channel Access"
    acquire = f"{scheme}{prefix}acquire"
    try:
        context.connect([acquire], timeout=timeout)
    except PVFlowError as exc:
        raise DetectorSetupError(f"no detector IOC answers for {prefix} over {protocol} "
                                 f"({acquire}: {exc})", pv=acquire) from None
    offered = _offered_channels(context, f"{scheme}{prefix}channels", timeout)
    chosen = tuple(channels or offered or ())
    if not chosen:
        raise DetectorSetupError(f"{prefix}: the IOC has no `channels` PV (Diss): name the "
                                 "channels to save")
    unknown = [c for c in chosen if offered is not None and c not in offered]
    if unknown:
        raise DetectorSetupError(f"{prefix}: no channel {', '.join(unknown)} (the IOC has "
                                 f"{', '.join(offered or ())})")
    sizes = {c: [f"{scheme}{prefix}{c}:asize{axis}" for axis in range(3)] for c in chosen}
    values = context.get_many([pv for names in sizes.values() for pv in names],
                              timeout=timeout)
    failed = [pv for pv, value in values.items() if isinstance(value, BaseException)]
    if failed:
        raise DetectorSetupError(f"{prefix}: cannot read {', '.join(failed)} (no such "
                                 "channel?)", pv=failed[0])
    shapes = {c: tuple(first_int(values[pv]) for pv in names)
              for c, names in sizes.items()}
    if len(set(shapes.values())) != 1:
        raise DetectorSetupError(f"{prefix}: channels differ in size: {shapes}")
    num_images, width, height = shapes[chosen[0]]
    return DetectorLayout(prefix, chosen, num_images, width, height,
                          _find_params(context, scheme + prefix, chosen, params), scheme,
                          None if pva else _pixel_type(context, prefix, chosen, timeout))


def _pixel_type(context: Context, prefix: str, channels: Sequence[str],
                timeout: float) -> str | None:
    """The images' numpy type from their waveforms' FTVL field; None when a server does not
    say (no such field) or the channels differ."""
    fields = [f"{prefix}{c}:image.FTVL" for c in channels]
    values = context.get_many(fields, timeout=min(timeout, 2.0), as_string=True)
    if any(isinstance(value, BaseException) for value in values.values()):
        return None
    types = {FTVL_TYPES.get(str(value)) for value in values.values()}
    return types.pop() if len(types) == 1 else None


def _offered_channels(context: Context, pv: str, timeout: float) -> tuple[str, ...] | None:
    try:
        return tuple(filter(None, _text(context.get(pv, timeout=min(timeout, 1.0)))
                            .split(":")))
    except PVFlowError:
        return None  # a Diss IOC: it has no such PV


def _find_params(context: Context, base: str, channels: Sequence[str],
                 names: Sequence[str] | None) -> dict[str, tuple[str, ...]]:
    candidates = {c: [f"{base}{c}:{n}" for n in names or KNOWN_PARAMS] for c in channels}
    values = context.get_many([pv for pvs in candidates.values() for pv in pvs],
                              timeout=2.0 if names else 0.5)
    if names:
        failed = [pv for pv, value in values.items() if isinstance(value, BaseException)]
        if failed:
            raise DetectorSetupError(f"no channel parameter {', '.join(failed)}", pv=failed[0])
    return {c: tuple(pv.rsplit(":", 1)[1] for pv in pvs
                     if not isinstance(values[pv], BaseException))
            for c, pvs in candidates.items()}


class DetectorSource:
    """Monitors one detector IOC and returns its series, whole and in order."""

    def __init__(self, context: Context, layout: DetectorLayout, *,
                 settle: float = SETTLE_SECONDS, image_context: Context | None = None) -> None:
        self.context = context
        self.image_context = image_context or context
        self.layout = layout
        self.settle = settle
        image_keys = {f"image:{c}": layout.pv(f"{c}:image") for c in layout.channels}
        series_keys = {k: layout.pv(k) for k in SERIES_KEYS}
        self.names = {ACQUIRE: layout.pv("acquire"), **series_keys, **image_keys}
        self.assembler = SeriesAssembler([*series_keys, *image_keys], self.names)
        self._inbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._params: dict[tuple[str, str], Any] = {}
        self._subscriptions: list[Any] = []
        self._ready: list[Window] = []
        self._fall_seen_at: float | None = None
        self.last_numid: int | None = None
        self.image_dtype: np.dtype | None = None  # pixel type as received, from the first image
        self._cancelled_seen = 0
        self.last_uuid: str | None = None

    # -- lifetime ---------------------------------------------------------------------------

    def start(self) -> DetectorSource:
        # acquire last: its first update opens the bookkeeping, data keys go in before it
        for key, pv in [*list(self.names.items())[1:], (ACQUIRE, self.names[ACQUIRE])]:
            self._subscribe(key, pv)
        for channel, names in self.layout.params.items():
            for name in names:
                self._subscribe(f"param:{channel}:{name}", self.layout.pv(f"{channel}:{name}"))
        return self

    def wait_subscribed(self, timeout: float) -> None:
        """Return once every monitor has sent its first value: from then on no series is
        missed. :class:`.SeriesError` naming the silent PVs otherwise."""
        deadline = time.monotonic() + timeout
        while not self.assembler.subscribed:
            try:
                self._handle(*self._inbox.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                silent = [self.names[k] for k in self.assembler.silent]
                raise SeriesError(f"no first value within {timeout} s from "
                                  f"{', '.join(silent)}") from None
            self._decide()

    def _subscribe(self, key: str, pv: str) -> None:
        put = self._inbox.put
        context = self.image_context if key.startswith("image:") else self.context
        image = key.startswith("image:")
        self._subscriptions.append(context.subscribe(
            pv, lambda reading: put((key, reading)), form="time", queue_size=MONITOR_QUEUE,
            connection_callback=lambda up: None if up else put(("lost", pv)),
            server_queue_size=IMAGE_SERVER_QUEUE if image else 16,
            dtype=self.layout.unsigned_images if image else None))

    def close(self) -> None:
        for subscription in self._subscriptions:
            subscription.close()
        self._subscriptions.clear()

    def __enter__(self) -> DetectorSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_for_next_start(self, timeout: float) -> None:
        """Return once the detector starts another series (``acquire`` rises), after
        ``timeout``, or on :meth:`interrupt`: a writer sharing the GIL with a RunEngine writes
        while the detector exposes, not while the RunEngine prepares the next point. What
        arrives meanwhile is kept for the next series."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                key, item = self._inbox.get(timeout=left)
            except queue.Empty:
                return
            if key == INTERRUPT:
                return
            self._handle(key, item)
            self._decide()
            if key == ACQUIRE and first_int(item.value):
                return

    def interrupt(self) -> None:
        """Make :meth:`next_series`, waiting in another thread, return None now rather than
        at its timeout: a writer told to stop need not sit out its poll."""
        self._inbox.put((INTERRUPT, None))

    @property
    def idle(self) -> bool:
        """Nothing received is waiting to be assembled."""
        return self._inbox.empty() and not self._ready

    # -- series -----------------------------------------------------------------------------

    def next_series(self, timeout: float | None = None) -> SeriesData | None:
        """The next complete series; None when none completes within ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._ready:
            self._check_dropped()
            fall_seen_at = self._fall_seen_at
            wait = self.settle if fall_seen_at is not None else None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                wait = left if wait is None else min(wait, left)
            try:
                key, item = self._inbox.get(timeout=wait)
            except queue.Empty:
                if fall_seen_at is not None and time.monotonic() - fall_seen_at >= self.settle:
                    self._decide(give_up=True)
                continue
            if key == INTERRUPT:
                return None
            self._handle(key, item)
            self._decide()
        return self._series(self._ready.pop(0))

    def _handle(self, key: str, item: Any) -> None:
        if key == INTERRUPT:
            return
        if key == "lost":
            raise SeriesError(f"lost the connection to {item} after {self._last_saved()}: the "
                              "series acquired from then on are missing (IOC stopped or "
                              "restarted)")
        if isinstance(item, BaseException):  # the server refused the monitor: it names why
            raise SeriesError(f"no updates of {self._pv_of(key)} after {self._last_saved()}: "
                              f"{item}")
        if key.startswith("param:"):
            _, channel, name = key.split(":", 2)
            self._params[channel, name] = item.value
            return
        if self.image_dtype is None and key.startswith("image:"):
            self.image_dtype = np.asarray(item.value).dtype
        before = self.assembler.pending_falls
        self.assembler.add(key, item.timestamp or 0.0, item.value)
        if self.assembler.pending_falls > before and self._fall_seen_at is None:
            self._fall_seen_at = time.monotonic()

    def _last_saved(self) -> str:
        if self.last_numid is None:
            return "the start"
        return f"series {self.last_numid} ({self.last_uuid})"

    def _pv_of(self, key: str) -> str:
        if key.startswith("param:"):
            return self.layout.pv(key.split(":", 1)[1])
        return self.names[key]

    def _decide(self, give_up: bool = False) -> None:
        self._ready.extend(self.assembler.take(give_up))
        self._fall_seen_at = time.monotonic() if self.assembler.pending_falls else None

    def _check_dropped(self) -> None:
        for subscription in self._subscriptions:
            if subscription.dropped:
                raise SeriesError(f"{subscription.name}: {subscription.dropped} updates "
                                  "dropped (the writer fell behind the detector); series after "
                                  f"{self.last_numid} may be missing")

    def _series(self, window: Window) -> SeriesData:
        values = window.values
        numid, uuid = first_int(values["numid"]), _text(values["uuid"])
        # a cancelled series may have used up an id: as many as falls that published nothing
        cancelled, self._cancelled_seen = (self.assembler.empty_windows - self._cancelled_seen,
                                           self.assembler.empty_windows)
        if self.last_numid is not None and not \
                self.last_numid < numid <= self.last_numid + 1 + cancelled:
            missing = f"{self.last_numid + 1}" if numid == self.last_numid + 2 else \
                f"{self.last_numid + 1}..{numid - 1}" if numid > self.last_numid else \
                f"after {self.last_numid} (numid restarted at {numid}: IOC restarted?)"
            raise SeriesError(f"{self.layout.prefix}: series {missing} missing: series "
                              f"{self.last_numid} was followed by series {numid}")
        self.last_numid, self.last_uuid = numid, uuid
        layout = self.layout
        shape = (layout.num_images, layout.width, layout.height)
        count = int(np.prod(shape))
        images = {}
        for channel in layout.channels:
            flat = np.asarray(values[f"image:{channel}"]).reshape(-1)
            if flat.size < count:
                raise SeriesError(f"series {numid}: {layout.pv(channel + ':image')} has "
                                  f"{flat.size} elements, {count} expected for {shape}")
            images[channel] = flat[:count].reshape(shape)
        n = layout.num_images
        params = {c: {name: self._params[c, name] for name in names if (c, name) in self._params}
                  for c, names in layout.params.items()}
        # a waveform of one element may come as a scalar
        start_ts, exposures = (np.asarray(values[k], float).reshape(-1)[:n]
                               for k in ("start_ts", "acq_td"))
        return SeriesData(numid, uuid, images, start_ts, exposures, params)
