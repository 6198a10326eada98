"""pvflow for Badger: a machine interface over pvflow's Context (integration layer).

Needs the ``badger`` extra (``badger-opt``). Badger finds the interface through the plugin
folder ``interfaces/pvflow`` that ``pvflow badger install`` writes; Python code uses
:class:`Interface` directly. Imports :class:`pvflow.Context` only, never the transports.
"""

from .errors import ReadbackError, SetValuesError
from .interface import Interface
from .validation import Validation, wait_for_readback

__all__ = ["Interface", "ReadbackError", "SetValuesError", "Validation", "wait_for_readback"]
