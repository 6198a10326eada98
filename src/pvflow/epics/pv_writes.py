"""`Writes`: a PV's ``put``, with pyepics' wait, put-callback and ``put_complete``
(integration layer, part of :class:`pvflow.epics.pv.PV`).

``put(callback=...)`` returns at once; the callback runs exactly once, when the server
confirms the write. ophyd's PV overrides ``_put_failed`` and ``_convert_errors``: it raises
where pyepics returns -1, and reports the codec's own ValueError.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import PVFlowError, PVTimeoutError
from .exceptions import ChannelAccessException
from .session import Host
from .values import wire_value

log = logging.getLogger("pvflow.epics")

FOREVER = 315569520.0  # "no timeout" as ten years, as ophyd's pyepics shim does


class Writes:
    """Mixed into :class:`pvflow.epics.pv.PV`."""

    session: Host
    pvname: str
    _put_complete: bool | None

    if TYPE_CHECKING:
        def native(self) -> tuple[str, int]: ...
        def wait_for_connection(self, timeout: float | None = None) -> bool: ...
        def _wrap(self, kind: str, callback: Callable[..., Any]) -> Callable[..., Any]: ...

    def put(self, value: Any, wait: bool = False, timeout: float | None = 30.0,
            use_complete: bool = False, callback: Callable[..., None] | None = None,
            callback_data: Any = None) -> int | None:
        """Write ``value``: 1 once sent (or, with ``wait``, confirmed), -1 when ``wait`` timed
        out, None when the PV is not connected. With ``callback`` the server's put-callback is
        used and ``callback(pvname=..., data=callback_data)`` runs once it confirms (a dict
        ``callback_data`` is passed as keywords); ``use_complete`` sets ``put_complete``."""
        if not self.wait_for_connection():
            return None
        value = self._wire_value(value)
        context = self.session.context
        seconds = FOREVER if timeout is None else timeout
        if not (wait or use_complete or callable(callback)):
            self._convert_errors(value, lambda: context.put(self.pvname, value, wait=False,
                                                            timeout=seconds))
            return 1
        self._put_complete = False
        notify = self._put_notifier(value, callback, callback_data)
        if not wait:
            self._convert_errors(value, lambda: context.put(self.pvname, value,
                                                            timeout=seconds, callback=notify))
            return 1
        try:
            self._convert_errors(value, lambda: context.put(self.pvname, value, wait=True,
                                                            timeout=seconds))
        except PVTimeoutError as error:
            return self._put_failed(error)
        except PVFlowError as error:
            notify(error)
            return self._put_failed(error)
        notify(None)
        return 1

    def _put_notifier(self, value: Any, callback: Callable[..., None] | None,
                      callback_data: Any) -> Callable[[BaseException | None], None]:
        keywords = callback_data if isinstance(callback_data, dict) else {"data": callback_data}
        run = self._wrap("get_put", callback) if callable(callback) else None

        def confirmed(error: BaseException | None) -> None:
            if error is not None:
                log.warning("%s: put of %r failed: %s", self.pvname, value, error)
            self._put_complete = True
            if run is not None:
                try:
                    run(pvname=self.pvname, **keywords)
                except Exception:
                    log.exception("%s: put callback %r failed", self.pvname, callback)

        return confirmed

    def _put_failed(self, error: PVFlowError) -> int:
        """What a failed put with ``wait`` returns (ophyd's layer raises instead)."""
        log.warning("%s: put failed: %s", self.pvname, error)
        return -1

    def _convert_errors(self, value: Any, send: Callable[[], None]) -> None:
        try:
            send()
        except (ValueError, TypeError) as error:
            raise ChannelAccessException(f"{self.pvname}: cannot put {value!r}: {error}") \
                from error

    def _wire_value(self, value: Any) -> Any:
        native_type, element_count = self.native()
        try:
            return wire_value(value, native_type, element_count)
        except ValueError as error:
            raise ChannelAccessException(f"{self.pvname}: cannot put {value!r}: {error}") \
                from error
