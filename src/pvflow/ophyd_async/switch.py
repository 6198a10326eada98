"""One call that makes ophyd-async's own EPICS factories and devices use pvflow.

ophyd-async picks a backend class per protocol from module globals of
``ophyd_async.epics.core._signal`` each time a signal or declarative ``EpicsDevice`` child is
built; replacing those globals is the only hook it offers (``EpicsProtocol`` is closed).
"""

from __future__ import annotations

from ophyd_async.epics.core import _signal

from .backend import PvflowSignalBackend
from .command import PvflowCommandBackend

_ORIGINAL = {"CaSignalBackend": _signal.CaSignalBackend,
             "CaCommandBackend": _signal.CaCommandBackend}


def use_pvflow_backend() -> None:
    """Route every ``ca://`` (and bare) name of ``epics_signal_*``, ``epics_triggerable_command``
    and ``EpicsDevice`` annotations built from now on through pvflow. ``pva://`` stays with
    ophyd-async's p4p backend until pvflow's Context routes pvAccess."""
    _signal.CaSignalBackend = PvflowSignalBackend
    _signal.CaCommandBackend = PvflowCommandBackend


def restore_default_backends() -> None:
    """Undo :func:`use_pvflow_backend`."""
    for name, original in _ORIGINAL.items():
        setattr(_signal, name, original)
