"""The Diss-compatible detector IOC (application layer).

- :mod:`.events`: the device <-> controller events;
- :mod:`.backends`: the backend contract (``DetectorBackend``) in :mod:`.backends.base`, the
  simulated detector :mod:`.backends.sim` and the Eiger2 :mod:`.backends.eiger`;
- :mod:`.config`: the ``DISS_*`` variables;
- :mod:`.device`: runs a backend, turning its failures into events;
- :mod:`.series`: collects and checks one image series;
- :mod:`.controller`: Diss's state machine;
- :mod:`.records`: the EPICS records; :mod:`.app`: ``pvflow ioc detector``.
"""

from .backends.base import BackendFailure, DetectorBackend
from .events import ChannelConfig, DeviceConfig, DeviceRuntime

__all__ = ["BackendFailure", "ChannelConfig", "DetectorBackend", "DeviceConfig", "DeviceRuntime"]
