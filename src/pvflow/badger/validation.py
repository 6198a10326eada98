"""Validation functions: checks run after a put, per channel (integration layer).

Badger environments pass them to ``Interface.set_values(inputs, configs)`` as a mapping from
the set PV to a ``functools.partial`` (the convention of Badger's pvAccess interface); the
interface calls each one as ``validation(set_pv=..., set_value=..., context=...)`` once the
put has completed. A validation raises when the machine did not follow, and may return what
it saw (``set_values`` returns it).

A completed put only says the IOC accepted the value; a magnet's current, a motor's position
or anything served over pvAccess (QSRV acknowledges a put before the record has processed)
arrives later, on a readback PV. Optimising on observables read before the machine got there
would teach the optimiser noise.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from pvflow import Context

from .errors import ReadbackError

Validation = Callable[..., Any]
"""``validation(set_pv=str, set_value=Any, context=Context) -> Any``; raises on failure."""


class _Latest:
    """The last readback update, and an event set when one was close enough."""

    def __init__(self, expected: float, tolerance: float):
        self.expected = expected
        self.tolerance = tolerance
        self.value: Any = None
        self.matched: Any = None
        self.reached = threading.Event()

    def update(self, value: Any) -> None:
        self.value = value
        if not self.reached.is_set() and within(value, self.expected, self.tolerance):
            self.matched = value
            self.reached.set()


def within(value: Any, expected: float, tolerance: float) -> bool:
    """True when every element of ``value`` lies within ``tolerance`` of ``expected``."""
    try:
        return bool(np.all(np.abs(np.asarray(value, dtype=float) - expected) <= tolerance))
    except (TypeError, ValueError):  # a string or structure is never "close" to a number
        return False


def wait_for_readback(set_pv: str, set_value: float, context: Context, *, readback_pv: str,
                      tolerance: float, timeout: float = 5.0, offset: float = 0.0) -> Any:
    """Wait until ``readback_pv`` is within ``tolerance`` of ``set_value + offset``.

    Meant to be bound with ``functools.partial(wait_for_readback, readback_pv=...,
    tolerance=..., timeout=..., offset=...)``. It subscribes to the readback rather than
    polling it, so it returns on the first matching update and costs the IOC one monitor.
    Returns the readback; raises :class:`ReadbackError` naming the set PV, the readback PV,
    its last value and the expected value after ``timeout`` seconds.
    """
    expected = set_value + offset
    latest = _Latest(expected, tolerance)
    with context.subscribe(readback_pv, latest.update, form="value"):
        if latest.reached.wait(timeout):
            return latest.matched
    raise ReadbackError(set_pv, set_value, readback_pv, latest.value, expected, tolerance,
                        timeout)
