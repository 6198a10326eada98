"""pyepics' one-call functions: ``caget``, ``caput``, ``cainfo``, ``camonitor``,
``caget_many``, ``caput_many`` (integration layer over PV objects and the session's Context).

As in pyepics, the single-PV functions go through the cached PV of ``get_pv`` (a second
``caget`` of a name reuses its monitor), and failures give None (or -1) instead of raising.
The bulk functions use pvflow's bulk operations: ``caget_many`` reads every name in one round
trip per server, ``caput_many`` connects every name in one batch of searches.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import PVFlowError, PVTimeoutError
from . import ca
from .fields import char_value, dbr_native, is_array
from .pv import PV, fmt_time, get_pv
from .session import default_session

_monitors: dict[str, PV] = {}
MONITOR_INDEX = -999  # the callback slot camonitor uses, as pyepics


def caput(pvname: str, value: Any, wait: bool = False, timeout: float = 60.0,
          connection_timeout: float = 5.0) -> int | None:
    """Write ``value``: 1 on success, -1 when ``wait`` timed out, None if not connected."""
    started = time.monotonic()
    pv = get_pv(pvname, timeout=connection_timeout, connect=True)
    if not pv.connected:
        return None
    return pv.put(value, wait=wait, timeout=timeout - (time.monotonic() - started))


def caget(pvname: str, as_string: bool = False, count: int | None = None,
          as_numpy: bool = True, use_monitor: bool = True, timeout: float = 5.0,
          connection_timeout: float = 5.0) -> Any:
    """The value of ``pvname`` (from its monitor when it runs), or None on failure."""
    started = time.monotonic()
    pv = get_pv(pvname, timeout=connection_timeout, connect=True)
    if not pv.connected:
        return None
    if as_string:
        pv.get_ctrlvars()
    return pv.get(count=count, timeout=max(timeout - (time.monotonic() - started), 0.01),
                  use_monitor=use_monitor, as_string=as_string, as_numpy=as_numpy)


def cainfo(pvname: str, print_out: bool = True, timeout: float = 5.0,
           connection_timeout: float = 5.0) -> str | None:
    """pyepics' information paragraph about ``pvname``: printed, or returned with
    ``print_out=False``."""
    pv = get_pv(pvname, timeout=connection_timeout, connect=True)
    if not pv.connected:
        return None
    pv.get(timeout=timeout)
    text = pv.info
    if print_out:
        ca.write(text or "")
        return None
    return text


def camonitor(pvname: str, writer: Callable[[str], Any] | None = None,
              callback: Callable[..., None] | None = None, connection_timeout: float = 5.0,
              monitor_delta: float | None = None) -> None:
    """Print (through ``writer``) or hand to ``callback`` every change of ``pvname`` until
    ``camonitor_clear``."""
    write = writer or ca.write
    if callback is None:
        def callback(pvname: str | None = None, value: Any = None,
                     char_value: Any = None, **kwds: Any) -> None:
            write(f"{pvname:.32s} {fmt_time()} {repr(value) if char_value is None else char_value}")

    pv = get_pv(pvname, timeout=connection_timeout, connect=True, monitor_delta=monitor_delta)
    if pv.connected:
        pv.get()
        pv.add_callback(callback, index=MONITOR_INDEX, with_ctrlvars=True)
        _monitors[pvname] = pv


def camonitor_clear(pvname: str) -> None:
    """Stop what ``camonitor`` started on ``pvname``."""
    pv = _monitors.pop(pvname, None)
    if pv is not None:
        pv.remove_callback(index=MONITOR_INDEX)


def caget_many(pvlist: Sequence[str], as_string: bool = False, as_numpy: bool = True,
               count: int | None = None, timeout: float = 1.0,
               connection_timeout: float = 5.0, conn_timeout: float | None = None) -> list[Any]:
    """The values of ``pvlist`` in order, None where a PV did not connect or answer; every
    name is searched and read together."""
    if conn_timeout is not None:
        connection_timeout = conn_timeout
    names = list(pvlist)
    context = default_session().context
    found = context.get_many(names, timeout=connection_timeout + timeout, as_string=as_string)
    values = []
    for name in names:
        value: Any = found.get(name)
        if isinstance(value, BaseException):
            value = None
        elif as_string and not isinstance(value, str) and value is not None:
            value = _text(context, name, value)
        elif is_array(value):
            if count:
                value = value[:count]
            if not as_numpy and hasattr(value, "tolist"):
                value = value.tolist()
        values.append(value)
    return values


def _text(context: Any, name: str, value: Any) -> str:
    try:
        info = context.info(name)
    except PVFlowError:
        return str(value)
    native_type, element_count = dbr_native(info.native_type, info.element_count)
    return char_value(value, native_type, element_count, None, None, long_string=True)


def caput_many(pvlist: Sequence[str], values: Sequence[Any], wait: bool | str = False,
               connection_timeout: float = 5.0, put_timeout: float = 60) -> list[int]:
    """Write ``values`` to ``pvlist``: per PV 1 on success and -1 on failure (not connected,
    or not confirmed within ``put_timeout`` when waiting). ``wait="each"`` waits for every
    put in turn, ``wait="all"`` for all of them together."""
    if len(pvlist) != len(values):
        raise ValueError("List of PV names must be equal to list of values.")
    names = list(pvlist)
    try:
        default_session().context.connect(names, timeout=connection_timeout)
    except PVTimeoutError:
        pass  # those that did connect are written; the others give -1
    pvs = [get_pv(name, auto_monitor=False, timeout=connection_timeout) for name in names]
    if wait == "all":
        return _put_all(pvs, values, put_timeout)
    results = []
    for pv, value in zip(pvs, values):
        done = pv.put(value, wait=wait == "each", timeout=put_timeout) \
            if pv.wait_for_connection(0) else None
        results.append(1 if done == 1 else -1)
    return results


def _put_all(pvs: list[PV], values: Sequence[Any], put_timeout: float) -> list[int]:
    confirmed = threading.Condition()
    outcome: dict[int, int] = {}

    def finished(position: int) -> Callable[..., None]:
        def done(**ignored: Any) -> None:
            with confirmed:
                outcome[position] = 1
                confirmed.notify_all()
        return done

    started = []
    for position, (pv, value) in enumerate(zip(pvs, values)):
        if pv.wait_for_connection(0) and \
                pv.put(value, callback=finished(position), timeout=put_timeout) == 1:
            started.append(position)
    with confirmed:
        confirmed.wait_for(lambda: all(position in outcome for position in started),
                           put_timeout)
    return [outcome.get(position, -1) for position in range(len(pvs))]
