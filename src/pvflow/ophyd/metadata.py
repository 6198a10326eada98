"""`MetadataPrefetcher`: the first metadata of many PVs in a few bulk reads (integration layer).

When a Device connects, every signal's PV asks for its control metadata (limits, units,
precision, enum strings) at about the same moment. pyepics answers each on one of four utility
threads, one round trip at a time. Here the requests are grouped: the first one starts a bulk
read on a utility thread, and those arriving while it runs go together in the next one, so
a device of 1000 signals costs a couple of pipelined batches, with no timer to tune.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..context import DEFAULT, Context
from ..errors import PVFlowError
from ..epics.fields import is_array

if TYPE_CHECKING:
    from .pv import PV

log = logging.getLogger("pvflow.ophyd")

NO_WAIT = 0.001  # seconds: only a channel that is connected already answers

MetadataCallback = Callable[[str, dict[str, Any]], None]


class MetadataPrefetcher:
    """Reads CTRL metadata for PVs in batches; each PV's ``metadata_event`` says it arrived."""

    def __init__(self, context: Context, schedule: Callable[[Callable[[], None]], None]):
        self._context = context
        self._schedule = schedule
        self._lock = threading.Lock()
        self._waiting: list[tuple[PV, MetadataCallback | None, float | None]] = []
        self._draining = False

    def request(self, pv: PV, callback: MetadataCallback | None, timeout: float | None) -> None:
        """Fetch ``pv``'s metadata soon, then call ``callback(pvname, metadata)`` (on a
        utility thread)."""
        with self._lock:
            self._waiting.append((pv, callback, timeout))
            if self._draining:
                return
            self._draining = True
        self._schedule(self._drain)

    def _drain(self) -> None:
        while True:
            with self._lock:
                batch, self._waiting = self._waiting, []
                if not batch:
                    self._draining = False
                    return
            timeouts = [timeout for _, _, timeout in batch]
            timeout = None if None in timeouts else max(timeouts)  # type: ignore[type-var]
            self.fetch([pv for pv, _, _ in batch], timeout)
            for pv, callback, _ in batch:
                if callback is not None:
                    try:
                        callback(pv.pvname, pv.metadata())
                    except Exception:
                        log.exception("%s: metadata callback %r failed", pv.pvname, callback)

    def fetch(self, pvs: list[PV], timeout: float | None) -> None:
        """Read the metadata of those ``pvs`` nobody is reading yet, in bulk, and wait (up to
        ``timeout``) for those already being read by another thread."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pvs = [pv for pv in pvs if not pv.metadata_event.is_set()]  # read once per connection
        with self._lock:
            mine = [pv for pv in pvs if not pv.metadata_requested]
            for pv in mine:
                pv.metadata_requested = True
        if mine:
            try:
                self._read(mine, timeout)
            finally:
                for pv in mine:
                    pv.metadata_requested = False
        reading = {id(pv) for pv in mine}
        others = [pv for pv in pvs if id(pv) not in reading]
        for pv in others:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            pv.metadata_event.wait(remaining)

    def _read(self, pvs: list[PV], timeout: float | None) -> None:
        """CTRL for the scalars in bulk and for arrays one element each (the metadata is the
        same; the data is not needed). A CA channel knows its element count once connected;
        other names are told apart by a TIME read first."""
        seconds: Any = DEFAULT if timeout is None else timeout
        names = list(dict.fromkeys(pv.pvname for pv in pvs))
        counts = {name: count for name in names
                  if (count := _known_count(self._context, name)) is not None}
        unknown = [name for name in names if name not in counts]
        times = self._context.get_many(unknown, form="time", timeout=seconds) if unknown else {}
        for name, found in times.items():
            if not isinstance(found, BaseException):
                counts[name] = len(found) if is_array(found) else 1
        scalars = [name for name in names if counts.get(name) == 1]
        controls: dict[str, Any] = self._context.get_many(scalars, form="ctrl", timeout=seconds)
        for name in names:
            if name not in controls and name in counts:
                try:
                    controls[name] = self._context.get(name, form="ctrl", count=1,
                                                       timeout=seconds)
                except PVFlowError as error:
                    controls[name] = error
        for pv in pvs:
            found = controls.get(pv.pvname, times.get(pv.pvname))
            if isinstance(found, BaseException) or found is None:
                log.warning("%s: reading the control metadata failed: %s", pv.pvname, found)
                continue
            pv.apply_control(found)
            pv.metadata_event.set()


def _known_count(context: Context, name: str) -> int | None:
    """The element count of a connected CA channel (known locally since its connect), else
    None: a pvAccess channel learns it by introspection, a channel still connecting not yet."""
    if name.startswith("pva://"):
        return None
    try:
        return context.info(name, timeout=NO_WAIT).element_count
    except PVFlowError:
        return None
