"""``epics.ca.put``: a write with pyepics' wait and put-callback (integration layer over
Context)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import PVTimeoutError
from .. import dbr
from ..exceptions import ChannelAccessException
from ..values import wire_value
from .channels import chid_of, connect_channel, context, native_of


def put(chid: Any, value: Any, wait: bool = False, timeout: float = 30,
        callback: Callable[..., None] | None = None, callback_data: Any = None,
        ftype: int | None = None) -> int:
    """Write ``value``: 1 once sent (or confirmed, with ``wait``), -1 when the wait timed out.
    ``callback(pvname=..., data=callback_data)`` runs when the server confirms (a dict
    ``callback_data`` is passed as keywords)."""
    found = chid_of(chid)
    if not found.ready and not connect_channel(found, timeout):
        raise ChannelAccessException(f"put() timed out waiting '{found.pvname}' to connect "
                                     f"({timeout} seconds)")
    native_type, elements = native_of(found)
    try:
        value = wire_value(value, native_type, elements)
    except ValueError as error:
        raise ChannelAccessException(f"{found.pvname}: cannot put {value!r}: {error}") \
            from error
    keywords = callback_data if isinstance(callback_data, dict) else {"data": callback_data}
    client = context()
    try:
        if not (wait or callable(callback)):
            client.put(found.pvname, value, wait=False, timeout=timeout)
            return dbr.ECA_NORMAL
        if not wait and callback is not None:
            confirm = callback  # (named for the closure)
            client.put(found.pvname, value, timeout=timeout,
                        callback=lambda error: confirm(pvname=found.pvname, **keywords))
            return dbr.ECA_NORMAL
        client.put(found.pvname, value, wait=True, timeout=timeout)
    except PVTimeoutError:
        return -dbr.ECA_NORMAL
    except (ValueError, TypeError) as error:
        raise ChannelAccessException(f"{found.pvname}: cannot put {value!r}: {error}") \
            from error
    if callable(callback):
        callback(pvname=found.pvname, **keywords)
    return dbr.ECA_NORMAL
