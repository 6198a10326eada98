"""Checks of what callers hand the Context (client API layer; imports only pvflow.errors' peers).

A bad argument is refused here, before a channel is made or a byte is sent, with a
``ValueError`` naming the argument, the value and the reason: a timeout that is not a number
must not surface as a ``TypeError`` deep in a lock, a count of a billion must not reach a
server that would allocate it, and ``xyz://NAME`` must not be searched as a literal name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from typing import Any

SCHEMES = ("ca", "pva")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def checked_timeout(timeout: Any, what: str = "timeout") -> float | None:
    """Seconds to wait, or None for "forever" (``None`` and ``inf`` alike)."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise ValueError(f"{what} must be a number of seconds or None, not {timeout!r}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"{what} must be >= 0 seconds (or None to wait forever), "
                         f"not {timeout!r}")
    return None if math.isinf(timeout) else float(timeout)


def checked_count(name: str, count: Any) -> int | None:
    """``count`` of a get: None (the channel's own), or a whole number >= 0 (0: current length)."""
    if count is None:
        return None
    whole: int | None
    if isinstance(count, int) and not isinstance(count, bool):
        whole = count
    else:
        try:  # numpy integers and integral floats are whole numbers too
            whole = None if isinstance(count, (bool, str)) or not float(count).is_integer() \
                else int(count)
        except (TypeError, ValueError, OverflowError):
            whole = None
        if whole is None:
            raise ValueError(f"get of {name}: count must be a whole number, not {count!r}")
    if whole < 0:
        raise ValueError(f"get of {name}: count must be >= 0, not {whole}")
    return whole


def scheme_of(name: str, schemes: Collection[str] = SCHEMES) -> tuple[str, str]:
    """``(scheme, bare name)``: ``ca`` for bare names; a ``scheme://`` not in ``schemes`` is
    refused."""
    if "://" not in name:
        return "ca", name
    match = _SCHEME.match(name)
    if match is None:
        return "ca", name
    scheme = match.group(1)
    if scheme not in schemes:
        raise ValueError(f"{name!r}: unknown scheme {scheme + '://'!r} "
                         f"(use {', '.join(known + '://' for known in schemes)} or a bare "
                         f"name for Channel Access)")
    return scheme, name[match.end():]
