"""pvflow for ophyd (v1): one line switches a beamline's EpicsSignals and Devices to pvflow.

    from pvflow.ophyd import use_pvflow
    use_pvflow()            # before building any EpicsSignal or Device

Importing this package before ophyd keeps ophyd from starting pyepics at import (libca and
eight dispatcher threads that pvflow would replace anyway); if ophyd was imported first,
``use_pvflow`` stops that dispatcher.
"""

import os
import sys

if "ophyd" not in sys.modules and "OPHYD_CONTROL_LAYER" not in os.environ:
    os.environ["OPHYD_CONTROL_LAYER"] = "dummy"  # ophyd reads it once, at import
    try:
        import ophyd  # noqa: F401
    finally:
        del os.environ["OPHYD_CONTROL_LAYER"]

from .control_layer import ControlLayer, use_pvflow  # noqa: E402
from .pv import PV  # noqa: E402

__all__ = ["PV", "ControlLayer", "use_pvflow"]
