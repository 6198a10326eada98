"""The protocol a detector backend follows (application layer; no EPICS).

A backend is a class built as ``Backend(emit, environ)``: ``emit(event)`` sends a device event
to the controller (safe from any thread) and ``environ`` holds the configuration variables
(backends read their own, e.g. ``DISSSIM_*``). It answers three queries synchronously and runs
five commands as coroutines. Subclass :class:`DetectorBackend` or provide the same methods.

The contract, checked by the controller:

- ``acquire(duration)`` emits ``StartDataEvent``, then ``num_images`` ``ImageDataEvent`` (one
  array of ``image_size`` per channel each), then ``EndDataEvent``; or, once ``cancel()`` was
  called, ``CancelDataEvent`` and nothing more for that series;
- ``adjust_channel`` emits a ``ChannelStateEvent`` with the values actually in effect;
- problems are reported by raising (a command that raises puts the IOC in ERROR, or FAIL
  during start-up), by ``BackendFailure`` (always FAIL) or by emitting an ``ErrorEvent``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping

from ..events import DeviceConfig, DeviceEvent, DeviceRuntime, MetaValue

EventSink = Callable[[DeviceEvent], None]

#: Built-in backends; third parties use ``module:Class`` or this entry-point group.
BUILTIN_BACKENDS = {
    "sim": "pvflow.ioc.detector.backends.sim:SimDetector",
    "eiger": "pvflow.ioc.detector.backends.eiger:EigerDetector",
    "eiger500k": "pvflow.ioc.detector.backends.eiger:EigerDetector",  # Diss's module name
}
BACKEND_GROUP = "pvflow.ioc.detector.backends"

REQUIRED_METHODS = ("is_initialized", "config", "runtime", "initialize", "acquire", "cancel",
                    "clear", "adjust_channel", "close")


class BackendFailure(RuntimeError):
    """The device is beyond recovery (e.g. gone): the IOC enters FAIL and exits non-zero."""


class DetectorBackend(abc.ABC):
    """Base class for detector backends; see the module docstring for the contract."""

    def __init__(self, emit: EventSink, environ: Mapping[str, str]) -> None:
        self.emit = emit
        self.environ = environ

    @classmethod
    def check_environment(cls, environ: Mapping[str, str]) -> None:
        """Validate the backend's own variables at IOC start (raise ConfigError naming one).

        Optional: the IOC calls it, when present, before anything starts, so a bad variable is
        a one-line configuration error rather than a failure during WARMUP.
        """

    def image_overdue(self) -> float | None:
        """Seconds past the exposure this backend itself waits for images before it reports
        the series overdue (``math.inf``: forever), or None to leave that to the IOC's
        ``DISS_ACQUIRE_OVERDUE``. The IOC's own check then waits longer, so the backend's
        more specific error comes first."""
        return None

    # -- queries: synchronous, fast (they run inside the controller's loop step) --------------

    @abc.abstractmethod
    def is_initialized(self) -> bool:
        """Whether the device is ready to report its configuration."""

    @abc.abstractmethod
    def config(self) -> DeviceConfig | None:
        """The device configuration, or None while it is not known yet."""

    def runtime(self) -> DeviceRuntime:
        """Operational state, polled every loop period after start-up."""
        return DeviceRuntime()

    # -- commands: coroutines, each run as a task ----------------------------------------------

    @abc.abstractmethod
    async def initialize(self) -> None:
        """Bring the device to an initialized state (WARMUP)."""

    @abc.abstractmethod
    async def acquire(self, duration: float) -> None:
        """Acquire one series with ``duration`` seconds per image; emit its data events."""

    @abc.abstractmethod
    async def cancel(self) -> None:
        """Abort the running series: it must end with ``CancelDataEvent``."""

    async def clear(self) -> None:
        """Forget device-side errors (the user acknowledged them)."""

    @abc.abstractmethod
    async def adjust_channel(self, channel: str, **meta: MetaValue) -> None:
        """Apply channel parameters; emit a ``ChannelStateEvent`` with the values in effect."""

    async def close(self) -> None:
        """Release the device when the IOC stops."""
