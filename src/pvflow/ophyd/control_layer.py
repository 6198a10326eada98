"""pvflow as ophyd's control layer: the ``ophyd.cl`` namespace (integration layer: imports
pvflow.Context and ophyd, never sockets or pvflow.ca).

ophyd looks up eight names on ``ophyd.cl``: ``setup``, ``caput``, ``caget``, ``get_pv``,
``thread_class``, ``name``, ``release_pvs`` and ``get_dispatcher``. :class:`ControlLayer`
provides them over one pvflow Context, and :func:`use_pvflow` installs them. ophyd's own
``EventDispatcher`` is reused for the callback kinds ophyd routes through it (connection,
access rights, put completion, the ``monitor`` thread context Signal uses); monitor values
bypass it (see :mod:`pvflow.ophyd.pv`).
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import types
from collections.abc import Callable, Mapping
from typing import Any

import ophyd
from ophyd._dispatch import EventDispatcher, wrap_callback

from ..context import Context
from ..errors import PVFlowError
from .bulk_connect import install_device_bulk_connect
from .metadata import MetadataPrefetcher
from .pv import FOREVER, PV

log = logging.getLogger("pvflow.ophyd")

EXPORTS = ("setup", "caput", "caget", "get_pv", "thread_class", "name", "release_pvs",
           "get_dispatcher")


class ControlLayer:
    """The state behind ``ophyd.cl``: one Context, ophyd's dispatcher, the metadata prefetcher."""

    name = "pvflow"
    thread_class = threading.Thread

    def __init__(self, context: Context | None = None,
                 env: Mapping[str, str] | None = None):
        self._given_context = context
        self._env = env
        self.context: Context = context  # type: ignore[assignment]  # set by setup()
        self.dispatcher: EventDispatcher = None  # type: ignore[assignment]
        self.prefetcher: MetadataPrefetcher = None  # type: ignore[assignment]
        self._setup_lock = threading.Lock()
        self.flags = threading.Condition()  # shared by every PV's Flags

    def setup(self, logger: logging.Logger) -> EventDispatcher:
        """Start the dispatcher threads and the Context once; later calls change nothing."""
        with self._setup_lock:
            if self.dispatcher is None:
                self.context = self._given_context or Context(self._env)
                self.dispatcher = EventDispatcher(context=None, logger=logger)
                self.prefetcher = MetadataPrefetcher(self.context,
                                                     self.dispatcher.schedule_utility_task)
                atexit.register(self.shutdown)
            return self.dispatcher

    def shutdown(self) -> None:
        """Stop the dispatcher threads (registered with atexit, like ophyd's own layers)."""
        with self._setup_lock:
            dispatcher, self.dispatcher = self.dispatcher, None  # type: ignore[assignment]
        if dispatcher is not None and dispatcher.is_alive():
            dispatcher.stop()

    def get_dispatcher(self) -> EventDispatcher:
        return self.dispatcher

    def wrap(self, kind: str, callback: Callable[..., Any]) -> Callable[..., Any]:
        """Connection, access and put callbacks run on ophyd's dispatcher threads."""
        return wrap_callback(self.dispatcher, kind, callback)

    def get_pv(self, pvname: str, form: str = "time", connect: bool = False,
               context: Any = None, timeout: float = 5.0,
               connection_callback: Callable[..., None] | None = None,
               access_callback: Callable[..., None] | None = None,
               callback: Callable[..., None] | None = None, auto_monitor: Any = None,
               count: int | None = None, connection_timeout: float | None = None,
               **ignored: Any) -> PV:
        """A fresh PV object on every call (no cache): its callbacks and subscription are its
        own, while the channel underneath is shared through the Context."""
        if context is not None:
            raise ValueError(f"{pvname}: the pvflow control layer takes no pyepics context "
                             f"(got {context!r})")
        if self.dispatcher is None:
            self.setup(ophyd.logger)
        pv = PV(self, pvname, form=form, auto_monitor=auto_monitor, count=count,
                connection_callback=connection_callback, access_callback=access_callback,
                callback=callback, connection_timeout=connection_timeout)
        if connect:
            pv.wait_for_connection(timeout)
        return pv

    @staticmethod
    def release_pvs(*pvs: PV) -> None:
        """Drop one reference each; a PV nobody references stops its subscription and watch."""
        for pv in pvs:
            pv._reference_count -= 1
            if pv._reference_count <= 0:
                pv.disconnect()

    def caget(self, pvname: str, as_string: bool = False, count: int | None = None,
              timeout: float = 5.0, **ignored: Any) -> Any:
        """pyepics' ``caget``: the value, or None when the PV does not answer in time."""
        if self.dispatcher is None:
            self.setup(ophyd.logger)
        try:
            return self.context.get(pvname, as_string=as_string, count=count, timeout=timeout)
        except PVFlowError as error:
            log.warning("caget of %s failed: %s", pvname, error)
            return None

    def caput(self, pvname: str, value: Any, wait: bool = False, timeout: float | None = 60.0,
              **ignored: Any) -> None:
        """pyepics' ``caput``; ``wait=True`` returns when the server's put-callback completes."""
        if self.dispatcher is None:
            self.setup(ophyd.logger)
        self.context.put(pvname, value, wait=wait, timeout=FOREVER if timeout is None else timeout)

    def namespace(self) -> types.SimpleNamespace:
        """What ``ophyd.cl`` holds: the eight names ophyd's ``set_cl`` installs."""
        return types.SimpleNamespace(**{key: getattr(self, key) for key in EXPORTS})


_layer: ControlLayer | None = None


def use_pvflow(context: Context | None = None) -> types.SimpleNamespace:
    """Make pvflow ophyd's control layer; call it before building any EpicsSignal or Device.

    It stops the dispatcher threads of the layer ophyd picked at import (pyepics or caproto),
    installs ``ophyd.cl`` and wraps ``Device.wait_for_connection`` with the bulk connect.
    ``context`` replaces the default Context (EPICS_* from the environment). Calling it again
    keeps the running layer.
    """
    global _layer
    _stop_previous_layer()
    if _layer is None or (context is not None and context is not _layer.context):
        if _layer is not None:
            _layer.shutdown()  # signals built on it keep their PVs; new ones use the new one
        _layer = ControlLayer(context)
    _layer.setup(ophyd.logger)
    ophyd.cl = _layer.namespace()
    install_device_bulk_connect()
    return ophyd.cl


def _stop_previous_layer() -> None:
    """ophyd starts a layer when imported; its dispatcher (8 threads) would idle forever."""
    current = ophyd.cl
    if current is None or current.name in ("pvflow", "dummy"):
        return
    shim = sys.modules.get(f"ophyd._{current.name}_shim")
    dispatcher = current.get_dispatcher()
    if shim is None or dispatcher is None:
        return
    if dispatcher.is_alive():
        dispatcher.stop()
    shim._dispatcher = None  # its atexit cleanup then has nothing left to do
    if current.name == "pyepics":
        import epics

        epics.pv.default_pv_class = epics.PV
