"""pvflow for ophyd-async: a signal backend, its factories, and a one-call switch.

    from pvflow.ophyd_async import use_pvflow_backend
    use_pvflow_backend()    # epics_signal_* and EpicsDevice, CA and PVA, now use pvflow

or build signals directly with ``pvflow_signal_rw(float, "PV")`` (``ca://PV``, ``pva://PV``)
and friends.
"""

from .backend import PvflowPvaSignalBackend, PvflowSignalBackend, shared_context
from .command import PvflowCommandBackend, PvflowPvaCommandBackend
from .signals import (
    pvflow_signal_r,
    pvflow_signal_rw,
    pvflow_signal_rw_rbv,
    pvflow_signal_w,
    pvflow_signal_x,
    pvflow_triggerable_command,
)
from .switch import restore_default_backends, use_pvflow_backend

__all__ = [
    "PvflowCommandBackend",
    "PvflowPvaCommandBackend",
    "PvflowPvaSignalBackend",
    "PvflowSignalBackend",
    "pvflow_signal_r",
    "pvflow_signal_rw",
    "pvflow_signal_rw_rbv",
    "pvflow_signal_w",
    "pvflow_signal_x",
    "pvflow_triggerable_command",
    "restore_default_backends",
    "shared_context",
    "use_pvflow_backend",
]
