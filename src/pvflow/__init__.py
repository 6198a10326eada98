"""pvflow: fast EPICS Channel Access (and pvAccess) for bluesky and ophyd.

The public surface is :class:`Context` plus the typed errors and :class:`Reading`.
Importing pvflow starts nothing: the I/O thread starts with the first Context.
"""

from .errors import (
    AccessDeniedError,
    DisconnectedError,
    LocalProtocolError,
    PutError,
    ProtocolError,
    PVFlowError,
    PVTimeoutError,
    RemoteProtocolError,
)
from .reading import Reading

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "Context",
    "DisconnectedError",
    "LocalProtocolError",
    "PVFlowError",
    "PVTimeoutError",
    "ProtocolError",
    "PutError",
    "Reading",
    "RemoteProtocolError",
]


def __getattr__(name: str) -> type:  # lazy: keeps `import pvflow` free of threads and sockets
    if name == "Context":
        from .context import Context

        return Context
    raise AttributeError(name)
