"""``epics.ca``'s subscriptions: ``create_subscription`` and ``clear_subscription`` over
Context subscriptions (integration layer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...reading import Reading
from .. import dbr
from ..exceptions import ChannelAccessException
from ..fields import is_array, read_metadata
from .channels import chid_of, connect_channel, context, field_type, native_of, setting
from .reads import unpacked


def create_subscription(chid: Any, use_time: bool = False, use_ctrl: bool = False,
                        ftype: int | None = None, mask: int | None = None,
                        callback: Callable[..., None] | None = None, count: int = 0,
                        timeout: float | None = None) -> tuple[Any, None, Any]:
    """``callback(value=, pvname=, chid=, ftype=, count=, **metadata)`` on every change; the
    third item of the result is what ``clear_subscription`` takes."""
    found = chid_of(chid)
    if ftype is None:
        seconds = setting("DEFAULT_CONNECTION_TIMEOUT") if timeout is None else timeout
        if not found.ready and not connect_channel(found, seconds):
            raise ChannelAccessException(f"create_subscription() timed out waiting "
                                         f"'{found.pvname}' to connect ({seconds} seconds)")
        ftype = field_type(found)
    code = dbr.promote_fieldtype(ftype, use_time=use_time, use_ctrl=use_ctrl)
    form = dbr.form_of(code)
    native_type = native_of(found)[0] if found.connected else dbr.Name(dbr.native_type(code))

    def deliver(update: Any) -> None:
        value = update.value if isinstance(update, Reading) else update
        if count and is_array(value):
            value = value[:count]
        size = len(value) if is_array(value) else 1
        keywords = read_metadata(update, form) if isinstance(update, Reading) else {}
        if callable(callback):
            callback(value=unpacked(value, str(native_type), size, True), ftype=code,
                     count=size, chid=found, pvname=found.pvname, **keywords)

    event_id = context().subscribe(found.pvname, deliver,
                                    form="value" if form == "value" else form,
                                    mask=mask or setting("DEFAULT_SUBSCRIPTION_MASK"))
    return (callback, None, event_id)


def clear_subscription(event_id: Any) -> int:
    event_id.close()
    return dbr.ECA_NORMAL
