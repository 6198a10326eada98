"""``sim``: a simulated detector backend, deterministic for a given seed (no EPICS).

Configured by ``DISSSIM_*`` variables (the first three are Diss's names; Diss picks random
values when they are unset, pvflow uses the fixed defaults below so runs are reproducible):

======================== ====================================================== ============
variable                 meaning                                                 default
======================== ====================================================== ============
``DISSSIM_CHIP_SIZE``    image size ``WIDTH:HEIGHT``                              ``256:192``
``DISSSIM_CHANNELS``     channel names, ``:``-separated                           ``ch0:ch1``
``DISSSIM_CHANNEL_PARAMS`` writable channel parameters ``name[=value]``,          ``enerj=3.14``
                         ``:``-separated (value 0.0 when omitted)
``DISSSIM_NUM_IMAGES``   images per acquisition                                   ``2``
``DISSSIM_PATTERN``      ``noise`` (uniform 0..255), ``gradient``, ``spot``       ``noise``
                         (a Gaussian spot that moves), ``zeros``
``DISSSIM_DTYPE``        pixel type: ``float64`` (Diss's DOUBLE), ``float32``,    ``float64``
                         ``uint8``, ``uint16``, ``int16``, ``int32``, ``uint32``
``DISSSIM_SEED``         seed of the pattern generator                            ``0``
``DISSSIM_WARMUP``       seconds the simulated initialisation takes               ``1.0``
======================== ====================================================== ============

Pixel (0, 0) of every image holds the running image number (modulo the pixel type's range),
so a client can check that no image was lost or repeated. Each image takes ``duration``
seconds; ``cancel()`` interrupts the wait at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import numpy as np
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ...framework.settings import load_settings
from ..events import (
    CancelDataEvent,
    ChannelConfig,
    ChannelStateEvent,
    DeviceConfig,
    DeviceRuntime,
    EndDataEvent,
    ImageDataEvent,
    MetaValue,
    StartDataEvent,
)
from .base import DetectorBackend, EventSink

PATTERNS = ("noise", "gradient", "spot", "zeros")
DTYPES = ("float64", "float32", "uint8", "uint16", "int16", "int32", "uint32")
# Distinct precomputed frames per channel, bounded so big images stay cheap in memory.
MAX_BANK_FRAMES = 8
MAX_BANK_BYTES = 128 * 1024 * 1024


class SimSettings(BaseSettings):
    """The ``DISSSIM_*`` variables, validated."""

    model_config = SettingsConfigDict(env_prefix="DISSSIM_", extra="ignore")

    chip_size: str = "256:192"
    channels: str = "ch0:ch1"
    channel_params: str = "enerj=3.14"
    num_images: int = Field(default=2, ge=1, le=10000)
    pattern: str = "noise"
    dtype: str = "float64"
    seed: int = 0
    warmup: float = Field(default=1.0, ge=0)

    @field_validator("chip_size")
    @classmethod
    def _size(cls, value: str) -> str:
        parts = value.split(":")
        if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
            raise ValueError("expected WIDTH:HEIGHT with positive integers, e.g. 1024:1024")
        return value

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: str) -> str:
        names = [n for n in value.split(":")]
        if not names or any(not n or not n.replace("_", "").replace("-", "").isalnum()
                            for n in names):
            raise ValueError("expected names of letters, digits, '_' or '-', ':'-separated")
        if len(set(names)) != len(names):
            raise ValueError("channel names must be unique")
        return value

    @field_validator("channel_params")
    @classmethod
    def _params(cls, value: str) -> str:
        for item in filter(None, value.split(":")):
            name, _, number = item.partition("=")
            if not name.replace("_", "").isalnum():
                raise ValueError(f"bad parameter name {name!r}")
            if number:
                try:
                    float(number)
                except ValueError:
                    raise ValueError(f"parameter {name!r}: {number!r} is not a number") from None
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if value not in PATTERNS:
            raise ValueError(f"expected one of {', '.join(PATTERNS)}")
        return value

    @field_validator("dtype")
    @classmethod
    def _dtype(cls, value: str) -> str:
        if value not in DTYPES:
            raise ValueError(f"expected one of {', '.join(DTYPES)}")
        return value

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.chip_size.split(":")
        return int(width), int(height)

    @property
    def params(self) -> dict[str, float]:
        result: dict[str, float] = {}
        for item in filter(None, self.channel_params.split(":")):
            name, _, number = item.partition("=")
            result[name] = float(number) if number else 0.0
        return result


def make_pattern(pattern: str, size: tuple[int, int], dtype: np.dtype, index: int,
                 generator: np.random.Generator) -> np.ndarray:
    """Frame ``index`` of a pattern, shape ``size`` (width, height)."""
    width, height = size
    if pattern == "zeros":
        return np.zeros(size, dtype)
    if pattern == "noise":
        return (generator.random(size) * 256).astype(dtype)
    x = np.arange(width, dtype=np.float64)[:, None]
    y = np.arange(height, dtype=np.float64)[None, :]
    if pattern == "gradient":
        shift = index * max(1, width // MAX_BANK_FRAMES)
        values = ((x + shift) % width) / max(1, width - 1) * 128 + y / max(1, height - 1) * 127
        return values.astype(dtype)
    # spot: a Gaussian of height 255 circling the centre
    angle = 2 * np.pi * index / MAX_BANK_FRAMES
    cx = width / 2 + width / 4 * np.cos(angle)
    cy = height / 2 + height / 4 * np.sin(angle)
    sigma = max(1.0, min(width, height) / 16)
    values = 255 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    return values.astype(dtype)


class SimDetector(DetectorBackend):
    """A detector that produces pattern images at ``duration`` seconds per image."""

    def __init__(self, emit: EventSink, environ: Mapping[str, str]) -> None:
        super().__init__(emit, environ)
        self.settings = load_settings(SimSettings, environ)
        self._initialized = False
        self._config: DeviceConfig | None = None
        self._meta: dict[str, dict[str, MetaValue]] = {}
        self._bank: dict[str, list[np.ndarray]] = {}
        self._cancel = asyncio.Event()
        self._acquiring = False
        self._numid = -1
        self._image_counter = 0
        self._stamp_modulo = 0  # pixel (0, 0) wraps at the integer pixel type's range

    @classmethod
    def check_environment(cls, environ: Mapping[str, str]) -> None:
        load_settings(SimSettings, environ)

    # -- queries ------------------------------------------------------------------------------

    def is_initialized(self) -> bool:
        return self._initialized

    def config(self) -> DeviceConfig | None:
        return self._config

    def runtime(self) -> DeviceRuntime:
        return DeviceRuntime(state="acquiring" if self._acquiring else "idle")

    # -- commands -----------------------------------------------------------------------------

    async def initialize(self) -> None:
        s = self.settings
        await asyncio.sleep(s.warmup)
        dtype = np.dtype(s.dtype)
        self._stamp_modulo = int(np.iinfo(dtype).max) + 1 if dtype.kind in "iu" else 0
        names = s.channels.split(":")
        generator = np.random.default_rng(s.seed)
        frame_bytes = s.size[0] * s.size[1] * dtype.itemsize
        frames = max(1, min(MAX_BANK_FRAMES, MAX_BANK_BYTES // max(1, frame_bytes * len(names))))
        for number, name in enumerate(names):
            self._bank[name] = [make_pattern(s.pattern, s.size, dtype, number + i, generator)
                                for i in range(frames)]
            self._meta[name] = dict(s.params)
        self._config = DeviceConfig(
            channels=tuple(ChannelConfig(name, dict(self._meta[name])) for name in names),
            num_images=s.num_images, image_size=s.size, pixel_size=(75e-6, 75e-6),
            dtype=s.dtype)
        self._initialized = True

    async def acquire(self, duration: float) -> None:
        config = self._config
        if config is None:
            raise RuntimeError("acquire before initialize")
        self._cancel.clear()
        self._acquiring = True
        try:
            self._numid += 1
            start = StartDataEvent(self._numid)
            self.emit(start)
            for index in range(config.num_images):
                began = time.time()
                # made while the exposure runs: the loop is idle then, and busy after it
                images = self._images()
                if await self._cancelled_within(duration - (time.time() - began)):
                    self.emit(CancelDataEvent(start.uuid))
                    return
                self.emit(ImageDataEvent(index, start.uuid, began, time.time() - began,
                                         images))
            self.emit(EndDataEvent(start.uuid))
        finally:
            self._acquiring = False

    async def cancel(self) -> None:
        self._cancel.set()

    async def adjust_channel(self, channel: str, **meta: MetaValue) -> None:
        if channel not in self._meta:
            raise ValueError(f"unknown channel {channel!r}")
        unknown = sorted(set(meta) - set(self._meta[channel]))
        if unknown:
            raise ValueError(f"channel {channel!r} has no parameters {unknown}")
        for key, value in meta.items():
            self._meta[channel][key] = float(value)  # type: ignore[arg-type]
        self.emit(ChannelStateEvent(channel, dict(self._meta[channel])))

    # -- internals ----------------------------------------------------------------------------

    async def _cancelled_within(self, duration: float) -> bool:
        if duration <= 0:
            await asyncio.sleep(0)  # let the controller run between images
            return self._cancel.is_set()
        try:
            await asyncio.wait_for(self._cancel.wait(), timeout=duration)
        except asyncio.TimeoutError:
            return False
        return True

    def _images(self) -> dict[str, np.ndarray]:
        counter = self._image_counter
        self._image_counter += 1
        images = {}
        for name, bank in self._bank.items():
            image = bank[counter % len(bank)].copy()  # the controller owns what is emitted
            image[0, 0] = counter % self._stamp_modulo if self._stamp_modulo else counter
            images[name] = image
        return images
