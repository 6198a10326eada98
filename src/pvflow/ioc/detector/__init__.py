"""The Diss-compatible detector IOC (application layer).

- :mod:`.events`: the device <-> controller events;
- :mod:`.backend`: the backend protocol (``DetectorBackend``), :mod:`.sim` the simulator;
- :mod:`.device`: runs a backend, turning its failures into events;
- :mod:`.series`: collects and checks one image series;
- :mod:`.controller`: Diss's state machine;
- :mod:`.pvs`: the EPICS records; :mod:`.app`: ``pvflow ioc detector``.
"""

from .backend import BackendFailure, DetectorBackend
from .events import ChannelConfig, DeviceConfig, DeviceRuntime

__all__ = ["BackendFailure", "ChannelConfig", "DetectorBackend", "DeviceConfig", "DeviceRuntime"]
