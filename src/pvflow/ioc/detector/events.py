"""Events between the detector controller and its device backend (no I/O, no EPICS).

The flow is Diss's. The controller sends **requests** to the device: queries (read-only,
answered at once) and commands (state-changing, run as tasks). The device answers with **state
events** and, unsolicited, sends **data events** that frame every image series:
``StartDataEvent``, then exactly ``num_images`` ``ImageDataEvent``, then ``EndDataEvent`` -- or
``CancelDataEvent``, after which nothing more of that series may come.

Events are frozen, slotted dataclasses: once emitted, nobody changes them.
"""

from __future__ import annotations

import enum
import uuid as uuid_module
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Union

import numpy as np

MetaValue = Union[float, int, str]


class Query(enum.Enum):
    """Read-only requests; the backend answers them synchronously and fast."""

    IS_INITIALIZED = "IsInitialized"
    GET_CONFIG = "GetConfig"
    GET_RUNTIME = "GetRuntime"


class Command(enum.Enum):
    """State-changing requests; each runs as a task of the backend."""

    INITIALIZE = "Initialize"
    ACQUIRE = "Acquire"
    CANCEL = "Cancel"
    CLEAR = "Clear"
    CHANNEL_ADJUST = "ChannelAdjust"


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One image channel (e.g. an energy threshold) and its adjustable parameters."""

    label: str
    meta: Mapping[str, MetaValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """The quasi-static device setup, read once at start: it fixes the PVs and their sizes.

    ``image_size`` is (width, height); images are arrays of that shape.
    """

    channels: tuple[ChannelConfig, ...]
    num_images: int
    image_size: tuple[int, int]
    pixel_size: tuple[float, float] = (1.0, 1.0)
    dtype: str = "float64"

    def __post_init__(self) -> None:
        if not self.channels:
            raise ValueError("DeviceConfig needs at least one channel")
        labels = [channel.label for channel in self.channels]
        if len(set(labels)) != len(labels):
            raise ValueError(f"DeviceConfig channel labels must be unique, got {labels}")
        if self.num_images < 1:
            raise ValueError(f"DeviceConfig num_images must be >= 1, got {self.num_images}")
        if len(self.image_size) != 2 or min(self.image_size) < 1:
            raise ValueError(f"DeviceConfig image_size must be (width, height) >= 1, "
                             f"got {self.image_size}")
        np.dtype(self.dtype)  # raises TypeError for an unknown dtype name

    @property
    def pixels_per_series(self) -> int:
        return self.num_images * self.image_size[0] * self.image_size[1]


@dataclass(frozen=True, slots=True)
class DeviceRuntime:
    """Operational data polled while running; ``errors`` non-empty means the device is unwell."""

    state: str = "ok"
    raw_state: str = ""
    errors: tuple[str, ...] = ()


# -- requests (controller -> device) ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class QueryRequest:
    query: Query


@dataclass(frozen=True, slots=True)
class CommandRequest:
    command: Command
    params: Mapping[str, object] = field(default_factory=dict)


# -- state events (device -> controller, mostly answers) ------------------------------------

@dataclass(frozen=True, slots=True)
class CommandResultEvent:
    command: Command
    success: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class InitStateEvent:
    initialized: bool


@dataclass(frozen=True, slots=True)
class ConfigStateEvent:
    config: DeviceConfig


@dataclass(frozen=True, slots=True)
class RuntimeStateEvent:
    runtime: DeviceRuntime


@dataclass(frozen=True, slots=True)
class ChannelStateEvent:
    """The device's actual channel parameters, e.g. after a ChannelAdjust."""

    channel: str
    meta: Mapping[str, MetaValue]


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """The device reports a problem: ERROR, or FAIL when ``fatal``."""

    detail: str
    fatal: bool = False


# -- data events (device -> controller, unsolicited) ----------------------------------------

@dataclass(frozen=True, slots=True)
class StartDataEvent:
    numid: int
    uuid: str = field(default_factory=lambda: str(uuid_module.uuid4()))
    meta: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ImageDataEvent:
    """Image ``index`` of a series: one (width, height) array per channel."""

    index: int
    series_uuid: str
    start_ts: float
    duration: float
    images: Mapping[str, np.ndarray]


@dataclass(frozen=True, slots=True)
class EndDataEvent:
    series_uuid: str


@dataclass(frozen=True, slots=True)
class CancelDataEvent:
    series_uuid: str


StateEvent = Union[CommandResultEvent, InitStateEvent, ConfigStateEvent, RuntimeStateEvent,
                   ChannelStateEvent, ErrorEvent]
DataEvent = Union[StartDataEvent, ImageDataEvent, EndDataEvent, CancelDataEvent]
DeviceEvent = Union[StateEvent, DataEvent]
DATA_EVENTS = (StartDataEvent, ImageDataEvent, EndDataEvent, CancelDataEvent)
