"""`use_as_epics`: make ``import epics`` give pvflow.epics (integration layer).

Scripts written for pyepics import ``epics``, ``epics.ca``, ``epics.pv`` ... by name. After
``use_as_epics()`` those names resolve to pvflow's modules in ``sys.modules``, so such
scripts run on pvflow without an edit (a ``sitecustomize`` calling it covers a whole
interpreter). It must run before anything imports pyepics itself:
a module that already holds pyepics objects keeps them.

Not covered: ``epics.autosave``, ``epics.wx``, ``epics.qt``, ``epics.compat``, ``epics.alarm``
and the detector devices of ``epics.devices`` (areaDetector, MCA, scaler, struck, xspress3);
importing one of them raises ImportError naming pvflow.
"""

from __future__ import annotations

import sys
from types import ModuleType

MODULES = ("ca", "dbr", "pv", "device", "motor", "devices", "multiproc", "utils")
_TARGETS = {"multiproc": "processes", "utils": "text"}


def use_as_epics() -> ModuleType:
    """Register pvflow.epics as ``epics`` (and its submodules as ``epics.ca`` ...); returns
    the module. Raises RuntimeError when pyepics was imported already."""
    import pvflow.epics as package

    current = sys.modules.get("epics")
    if current is package:
        return package
    if current is not None:
        raise RuntimeError("pyepics is imported already (epics is "
                           f"{getattr(current, '__file__', current)!r}); call use_as_epics() "
                           "before anything imports epics")
    sys.modules["epics"] = package
    for name in MODULES:
        module = __import__(f"pvflow.epics.{_TARGETS.get(name, name)}", fromlist=["_"])
        sys.modules[f"epics.{name}"] = module
    sys.modules["epics.devices.ao"] = sys.modules["epics.devices.ai"] = \
        sys.modules["epics.devices.bi"] = sys.modules["epics.devices.bo"] = \
        sys.modules["pvflow.epics.devices.records"]
    return package
