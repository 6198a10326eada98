"""A put that is tried again when it times out (integration layer; uses pvflow.Context only).

A setpoint whose record is briefly busy (a power supply still ramping, a gateway under load)
makes a put-with-callback time out although the next attempt would pass. Losing a whole
optimisation step to that is worse than waiting a second, so timeouts, and only timeouts,
are retried: a refused or invalid put will not improve by repeating it.

After every timeout the channel is released (the next attempt searches afresh). The C IOC's
CA server (rsrv) runs one put-callback per channel at a time and, while one is pending,
stops reading that client's whole circuit: another put to the same channel would stall
every PV of that IOC until the first completes. Clearing the channel cancels the pending
put-callback.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from pvflow import Context, PVTimeoutError

log = logging.getLogger("pvflow.badger")


def put_with_retry(context: Context, name: str, value: Any, *, timeout: float, attempts: int,
                   delay: float) -> None:
    """Put ``value`` to ``name`` and wait for completion, up to ``attempts`` times.

    After the last timeout, raise :class:`PVTimeoutError` naming the PV and the value.
    """
    if attempts < 1:
        raise ValueError(f"put of {value!r} to {name}: attempts must be >= 1, not {attempts}")
    last: PVTimeoutError | None = None
    for attempt in range(1, attempts + 1):
        try:
            context.put(name, value, wait=True, timeout=timeout)
            return
        except PVTimeoutError as error:
            last = error
            context.release([name])
            if attempt < attempts:
                log.warning("put of %r to %s timed out (attempt %d of %d), retrying in %g s: %s",
                            value, name, attempt, attempts, delay, error)
                time.sleep(delay)
    raise PVTimeoutError(f"put of {value!r} to {name} timed out {attempts} time(s) "
                         f"({timeout} s each, {delay} s apart); last: {last}", pv=name) from last
