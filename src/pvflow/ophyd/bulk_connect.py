"""Device-level bulk connect (integration layer over pvflow.Context and ophyd's Device).

ophyd's ``Device.wait_for_connection`` polls ``signal.connected`` every 50 ms while each signal
connects and fetches its metadata on its own. With pvflow installed, the wrapper below first
connects every PV of the device in one ``Context.connect`` (one batch of name searches), reads
their metadata in one bulk read, lets each signal take its share, and only then hands over to
ophyd's own method, which then finds everything connected at its first look.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from typing import Any

from ophyd.device import Device
from ophyd.signal import DEFAULT_CONNECTION_TIMEOUT

from ..errors import PVTimeoutError
from .pv import PV

_MARK = "_pvflow_bulk_connect"


def signal_pvs(signals: Iterable[Any]) -> dict[int, list[PV]]:
    """The pvflow PVs of each EPICS signal, keyed by ``id(signal)``."""
    found: dict[int, list[PV]] = {}
    for signal in signals:
        pvs = [pv for pv in (getattr(signal, "_read_pv", None), getattr(signal, "_write_pv", None))
               if isinstance(pv, PV)]
        if pvs:
            found[id(signal)] = list({id(pv): pv for pv in pvs}.values())
    return found


def connect_signals(signals: list[Any], timeout: float | None) -> None:
    """Connect and prefetch every pvflow PV of ``signals`` in bulk, then let each signal whose
    PVs all answered finish its own connection bookkeeping. Failures are left for ophyd's own
    check, which names the signals that did not connect."""
    per_signal = signal_pvs(signals)
    if not per_signal:
        return
    deadline = None if timeout is None else time.monotonic() + timeout
    pvs = list({id(pv): pv for group in per_signal.values() for pv in group}.values())
    layer = pvs[0].layer
    try:
        layer.context.connect([pv.pvname for pv in pvs], timeout=timeout)
    except PVTimeoutError:
        pass
    layer.prefetcher.fetch([pv for pv in pvs if not pv.metadata_event.is_set()],
                           _remaining(deadline))
    for signal in signals:
        group = per_signal.get(id(signal))
        if group and all(pv.metadata_event.is_set() for pv in group) and not signal.connected:
            try:
                signal.wait_for_connection(timeout=_remaining(deadline))
            except TimeoutError:
                pass


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)


def install_device_bulk_connect() -> None:
    """Wrap ``ophyd.Device.wait_for_connection`` (once) with the bulk phase above."""
    original: Callable[..., None] = Device.wait_for_connection
    if getattr(original, _MARK, False):
        return

    @functools.wraps(original)
    def wait_for_connection(self: Device, all_signals: bool = False,
                            timeout: Any = DEFAULT_CONNECTION_TIMEOUT) -> None:
        if timeout is DEFAULT_CONNECTION_TIMEOUT:
            timeout = self.connection_timeout
        started = time.monotonic()
        connect_signals([walk.item for walk in self.walk_signals(include_lazy=all_signals)],
                        timeout)
        if timeout is not None:
            # At least one look: ophyd's loop does not run at all with a zero timeout.
            timeout = max(timeout - (time.monotonic() - started), 0.01)
        return original(self, all_signals=all_signals, timeout=timeout)

    setattr(wait_for_connection, _MARK, True)
    Device.wait_for_connection = wait_for_connection  # type: ignore[method-assign]
