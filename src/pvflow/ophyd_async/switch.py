"""One call that makes ophyd-async's own EPICS factories and devices use pvflow.

ophyd-async picks a backend class per protocol from module globals of
``ophyd_async.epics.core._signal`` each time a signal or declarative ``EpicsDevice`` child is
built; replacing those globals is the only hook it offers (``EpicsProtocol`` is closed).
``_pvi_connector`` imported its pvAccess names by value, so they are replaced there too.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from ophyd_async.epics.core import _pvi_connector, _signal

from . import pvi
from .backend import PvflowPvaSignalBackend, PvflowSignalBackend
from .command import PvflowCommandBackend, PvflowPvaCommandBackend

_PVA = {"PvaSignalBackend": PvflowPvaSignalBackend,
        "PvaCommandBackend": PvflowPvaCommandBackend}
_REPLACEMENTS: dict[ModuleType, dict[str, Any]] = {
    _signal: {"CaSignalBackend": PvflowSignalBackend,
              "CaCommandBackend": PvflowCommandBackend, **_PVA},
    _pvi_connector: {**_PVA, "pvget_with_timeout": pvi.pvget_with_timeout},
}
_ORIGINAL = {module: {name: getattr(module, name) for name in names}
             for module, names in _REPLACEMENTS.items()}


def use_pvflow_backend() -> None:
    """Route every ``ca://``, ``pva://`` and bare name of ``epics_signal_*``,
    ``epics_triggerable_command``, ``EpicsDevice`` annotations and PVI-discovered devices
    built from now on through pvflow's shared Context."""
    for module, replacements in _REPLACEMENTS.items():
        for name, replacement in replacements.items():
            setattr(module, name, replacement)


def restore_default_backends() -> None:
    """Undo :func:`use_pvflow_backend`: ophyd-async's aioca and p4p backends again."""
    for module, originals in _ORIGINAL.items():
        for name, original in originals.items():
            setattr(module, name, original)
