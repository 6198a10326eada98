"""`PV`: the object ophyd's EpicsSignal talks to (integration layer over pvflow.epics).

It is pvflow.epics' PV (pyepics' PV surface on a pvflow Context), adapted to ophyd as ophyd's
own pyepics shim adapts ``epics.PV``:

- A fresh object per ``get_pv`` (no cache): each has its own server-side subscription over
  the Context's shared channel, so two Devices on one prefix never share (or steal) callbacks.
- Connection, access-rights and put-completion callbacks go through ophyd's dispatcher threads
  (``metadata``, ``get_put``), where ophyd expects them; monitor callbacks run on pvflow's
  callback workers, in order per PV, so a slow subscriber on one PV never delays another.
- ``add_callback`` always monitors, properties never read the network, ``clear_callbacks``
  forgets connection and access callbacks too, a failed put raises: as ophyd's shims do.
- Metadata of many PVs is fetched in bulk reads (:mod:`pvflow.ophyd.metadata`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..epics.exceptions import ChannelAccessGetFailure
from ..epics.pv import PV as EpicsPV
from ..epics.pv_writes import FOREVER
from ..errors import PVFlowError
from ..reading import Reading

if TYPE_CHECKING:
    from .control_layer import ControlLayer


class PV(EpicsPV):
    """One ophyd-facing handle on one PV name (``ca://``, ``pva://`` or bare)."""

    def __init__(self, layer: ControlLayer, pvname: str, **kwargs: Any):
        self.layer = layer
        self._reference_count = 0
        super().__init__(pvname, session=layer, **kwargs)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<pvflow PV {self.pvname!r} {state}>"

    def _getarg(self, arg: str) -> Any:
        return self._args.get(arg)

    def add_callback(self, callback: Callable[..., None] | None = None,
                     index: int | None = None, run_now: bool = False,
                     with_ctrlvars: bool = True, **kw: Any) -> int | None:
        """Switches monitoring on (as ophyd's shims do); ``run_now`` delivers the latest
        value through ophyd's utility threads, never inline: the caller (ophyd's metadata
        thread) must not end up draining a busy PV's updates."""
        index = super().add_callback(callback, index=index, with_ctrlvars=with_ctrlvars, **kw)
        if not self._auto_monitor:
            self.auto_monitor = True
        if run_now and index is not None and self._has_monitor_value:
            self.layer.dispatcher.schedule_utility_task(self._serial.submit, self._run_now,
                                                         index)
        return index

    def clear_callbacks(self, with_access_callback: bool = True,
                        with_connect_callback: bool = True) -> None:
        super().clear_callbacks(with_access_callback, with_connect_callback)

    def put(self, value: Any, wait: bool = False, timeout: float | None = None,
            use_complete: bool = False, callback: Callable[..., None] | None = None,
            callback_data: Any = None) -> int | None:
        if not self.wait_for_connection(timeout):
            raise TimeoutError(f"{self.pvname}: not connected, cannot put {value!r}")
        return super().put(value, wait=wait, timeout=FOREVER if timeout is None else timeout,
                           use_complete=use_complete, callback=callback,
                           callback_data=callback_data)

    def _put_failed(self, error: PVFlowError) -> int:
        raise error

    def _read(self, form: str, count: int | None, timeout: float | None) -> Reading | None:
        """Any failed read is None here: ophyd turns it into its own ReadTimeoutError."""
        try:
            return super()._read(form, count, timeout)
        except ChannelAccessGetFailure:
            return None

    def _convert_errors(self, value: Any, send: Callable[[], None]) -> None:
        send()  # ophyd reports the codec's own ValueError

    def metadata(self) -> dict[str, Any]:
        """Everything known about the PV except its value (what ophyd's metadata callback
        takes)."""
        found = dict(self._args)
        found.pop("value", None)
        return found

    def get_all_metadata_blocking(self, timeout: float | None) -> dict[str, Any]:
        """Time and control metadata, from the prefetch when it already arrived."""
        if not self.metadata_event.is_set():
            self.layer.prefetcher.fetch([self], timeout)
        return self.metadata()

    def get_all_metadata_callback(self, callback: Callable[[str, dict[str, Any]], None], *,
                                  timeout: float | None) -> None:
        """``callback(pvname, metadata)`` once the metadata arrived; many PVs asking at once
        share one bulk read."""
        self.layer.prefetcher.request(self, callback, timeout)
