"""``eiger``: a Dectris Eiger2 behind the detector IOC (SIMPLON HTTP + Stream V2).

At WARMUP the backend initializes the detector if it needs it and writes the setup of
``EIGER_DEVICE_MODE`` (trigger mode, images per trigger, thresholds, stream on in CBOR). That
setup is quasi-static: every acquisition first reads it back and goes to ERROR naming the key
somebody else changed; ``clear`` writes it again. An acquisition sets the exposure (count time,
or gate pulses per image in the external modes), arms, triggers (snapshot) or waits for the
gate (single, double), passes each image on as it arrives and disarms. Images that do not come
within ``EIGER_IMAGE_OVERDUE`` of the exposure's end are an ERROR naming the series.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from typing import Any

from ....framework.settings import ConfigError, load_settings
from ...events import (
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
from ..base import BackendFailure, DetectorBackend, EventSink
from .config import EigerSettings
from .receiver import Received, StreamReceiver
from .simplon import SimplonClient, SimplonError
from .stream import EndMessage, ImageMessage, StartMessage, StreamError

log = logging.getLogger("pvflow.ioc.detector.eiger")

CHANNELS = ("threshold_1", "threshold_2")
ENERGY = "threshold_energy"
STATUS_PERIOD = 1.0  # seconds between status polls
INITIALIZE_TIMEOUT = 300.0  # a real detector takes minutes to initialize

Key = tuple[str, str]  # (subsystem, config key)


class SeriesOverdue(RuntimeError):
    """Images did not arrive within the overdue time."""


class EigerDetector(DetectorBackend):
    """The Eiger2 backend; see the module docstring."""

    def __init__(self, emit: EventSink, environ: Mapping[str, str]) -> None:
        super().__init__(emit, environ)
        self.settings = load_settings(EigerSettings, environ)
        s = self.settings
        self.api = SimplonClient(s.device_host, s.api_port, s.api_version, s.http_timeout)
        self._stream: StreamReceiver | None = None
        self._config: DeviceConfig | None = None
        self._expected: dict[Key, Any] = {}
        self._cancel = asyncio.Event()
        self._acquiring = False
        self._runtime = DeviceRuntime()
        self._recovering = False
        self._clears = 0
        self._setup_lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None

    @classmethod
    def check_environment(cls, environ: Mapping[str, str]) -> None:
        load_settings(EigerSettings, environ)

    def image_overdue(self) -> float:
        """The controller's generic overdue check waits at least this long (inf: forever)."""
        return self.settings.overdue

    # -- queries ------------------------------------------------------------------------------

    def is_initialized(self) -> bool:
        return self._config is not None

    def config(self) -> DeviceConfig | None:
        return self._config

    def runtime(self) -> DeviceRuntime:
        return self._runtime

    # -- commands -----------------------------------------------------------------------------

    async def initialize(self) -> None:
        served = await self.api.api_version()
        if served and served != self.settings.api_version:
            raise ConfigError(f"EIGER_API_VERSION={self.settings.api_version!r}: the detector "
                              f"at {self.api.base} serves API {served}")
        await self._apply_setup()
        self._config = await self._read_config()
        self._stream = StreamReceiver(self.settings.device_host, self.settings.stream_port)
        self._poller = asyncio.ensure_future(self._poll_status())

    async def acquire(self, duration: float) -> None:
        if self._config is None or self._stream is None:
            raise RuntimeError("acquire before initialize")
        self._cancel.clear()
        self._acquiring = True
        try:
            async with self._setup_lock:  # not while clear() writes the setup again
                await self._verify_setup()
            await self._set_exposure(duration)
            stale = self._stream.drain()
            if stale:
                log.debug("dropped %d stream messages of earlier series", stale)
            armed = await self.api.command("arm")
            series_id = armed.get("sequence id") if isinstance(armed, dict) else None
            if not isinstance(series_id, int):
                raise SimplonError(f"arm answered {armed!r}, without a 'sequence id'")
            await self._run_series(series_id, duration)
        finally:
            self._acquiring = False

    async def cancel(self) -> None:
        self._cancel.set()

    async def clear(self) -> None:
        """Write the IOC's setup again: after a reboot or a change made by somebody else."""
        if self._config is None:
            return
        self._recovering = True
        self._clears += 1
        self._runtime = DeviceRuntime()  # the errors were acknowledged; new ones count
        try:
            async with self._setup_lock:
                await self._apply_setup()
                if _geometry(await self._read_config()) != _geometry(self._config):
                    raise BackendFailure("the detector's geometry or channels changed; "
                                         "restart the IOC")
        finally:
            self._recovering = False

    async def adjust_channel(self, channel: str, **meta: MetaValue) -> None:
        if self._config is None or channel not in [c.label for c in self._config.channels]:
            raise ValueError(f"unknown channel {channel!r}")
        unknown = sorted(set(meta) - {ENERGY})
        if unknown:
            raise ValueError(f"channel {channel!r} has no parameters {unknown}; only {ENERGY}")
        key = ("detector", f"threshold/{CHANNELS.index(channel) + 1}/energy")
        if ENERGY in meta:
            energy = float(meta[ENERGY])  # type: ignore[arg-type]
            await self.api.put(*_config_path(key), energy)
            self._expected[key] = energy  # kept by a clear even if the readback fails
        energy = float(await self.api.get(*_config_path(key)))
        self._expected[key] = energy
        self.emit(ChannelStateEvent(channel, {ENERGY: energy}))

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        if self._stream is not None:
            await self._stream.close()
        await self.api.close()

    # -- setup ----------------------------------------------------------------------------------

    def _wanted_setup(self) -> dict[Key, Any]:
        s = self.settings
        wanted: dict[Key, Any] = {("stream", "mode"): "enabled", ("stream", "format"): "cbor",
                                  ("detector", "nimages"): s.images_per_trigger,
                                  ("detector", "ntrigger"): 1}
        if s.device_mode == "snapshot":
            wanted["detector", "trigger_mode"] = "ints"
        else:
            wanted["detector", "trigger_mode"] = "extg"
            wanted["detector", "extg_mode"] = s.device_mode
        if s.x2_threshold1_energy is not None:
            wanted["detector", "threshold/1/energy"] = s.x2_threshold1_energy
        if s.x2_threshold2_energy is not None:
            wanted["detector", "threshold/2/energy"] = s.x2_threshold2_energy
            wanted["detector", "threshold/2/mode"] = "enabled"
        return wanted

    async def _apply_setup(self) -> None:
        state = await self.api.get("detector", "status", "state")
        if state in ("na", "error"):
            log.info("initializing the detector (state %s)", state)
            await self.api.command("initialize", timeout=INITIALIZE_TIMEOUT)
        # thresholds as they are now, or as the IOC set them through threshold_energy
        setup = {**self._wanted_setup(), **{k: v for k, v in self._expected.items()
                                           if k[1].startswith("threshold/")}}
        for key, value in setup.items():
            await self.api.put(*_config_path(key), value)
        self._expected = setup

    async def _read_config(self) -> DeviceConfig:
        """The device configuration the IOC's records are built from."""
        names = ("x_pixels_in_detector", "y_pixels_in_detector", "x_pixel_size",
                 "y_pixel_size", "bit_depth_image", "threshold/2/mode",
                 "threshold/1/energy", "threshold/2/energy")
        values = dict(zip(names, await asyncio.gather(
            *(self.api.get("detector", "config", name) for name in names))))
        channels = CHANNELS if values["threshold/2/mode"] == "enabled" else CHANNELS[:1]
        for number, _ in enumerate(channels, start=1):
            key = ("detector", f"threshold/{number}/energy")
            self._expected[key] = float(values[key[1]])
        self._expected["detector", "threshold/2/mode"] = values["threshold/2/mode"]
        return DeviceConfig(
            channels=tuple(ChannelConfig(name, {ENERGY: float(values[f"threshold/{n}/energy"])})
                           for n, name in enumerate(channels, start=1)),
            num_images=self.settings.images_per_trigger,
            image_size=(int(values["x_pixels_in_detector"]), int(values["y_pixels_in_detector"])),
            pixel_size=(float(values["x_pixel_size"]), float(values["y_pixel_size"])),
            dtype=f"uint{int(values['bit_depth_image'])}")

    async def _verify_setup(self) -> None:
        keys = list(self._expected)
        found = await asyncio.gather(*(self.api.get(*_config_path(key)) for key in keys))
        for key, have in zip(keys, found):
            want = self._expected[key]
            if not _same(want, have):
                raise RuntimeError(f"detector configuration changed: {key[0]}/config/{key[1]} "
                                   f"is {have!r}, the IOC set {want!r} (clear to set it again)")

    async def _set_exposure(self, duration: float) -> None:
        if self.settings.device_mode == "snapshot":
            await self.api.put("detector", "config", "count_time", duration)
            await self.api.put("detector", "config", "frame_time", duration)
        else:
            await self.api.put("detector", "config", "nexpi", self.settings.exposures(duration))

    # -- one series ----------------------------------------------------------------------------

    async def _run_series(self, series_id: int, duration: float) -> None:
        """Start, images and end of the armed series ``series_id``; abort it on any failure."""
        loop = asyncio.get_running_loop()
        trigger: asyncio.Future[Any] | None = None
        try:
            start = await self._expect(series_id, StartMessage, loop.time()
                                       + self.settings.http_timeout, "start", cancellable=False)
            assert isinstance(start, StartMessage)
            uuid = start.series_unique_id
            self.emit(StartDataEvent(series_id, uuid, {"series_id": series_id,
                                                       "count_time": start.count_time}))
            if self.settings.device_mode == "snapshot":
                trigger = asyncio.ensure_future(self.api.command(
                    "trigger", timeout=duration + self.settings.overdue + 1))
            if not await self._images(series_id, uuid, loop.time() + duration
                                      + self.settings.overdue):
                await self._stop("abort", trigger)
                self.emit(CancelDataEvent(uuid))
                return
            if trigger is not None:
                await trigger
            await self.api.command("disarm")
            await self._expect(series_id, EndMessage, loop.time() + self.settings.http_timeout,
                               "end", cancellable=False)
            self.emit(EndDataEvent(uuid))
        except BaseException:
            await asyncio.shield(self._stop("abort", trigger))
            raise

    async def _images(self, series_id: int, uuid: str, deadline: float) -> bool:
        """Pass on every image of the series; False when cancelled."""
        assert self._config is not None
        count = self._config.num_images
        for index in range(count):
            try:
                message = await self._expect(series_id, ImageMessage, deadline, "image")
            except SeriesOverdue:
                raise SeriesOverdue(f"series {series_id} ({uuid}): image {index + 1} of {count} "
                                    f"overdue, not received {self.settings.overdue} s after the "
                                    f"end of the exposure") from None
            if message is None:
                return False
            assert isinstance(message, ImageMessage)
            if message.image_id != index:
                raise RuntimeError(f"series {series_id}: image {message.image_id} arrived where "
                                   f"image {index} was due (image {index} was lost)")
            self.emit(self._image_event(message, index, uuid))
        return True

    def _image_event(self, message: ImageMessage, index: int, uuid: str) -> ImageDataEvent:
        began = message.series_date.timestamp() if message.series_date else 0.0
        images = {name: image.T for name, image in message.data.items()}  # (width, height)
        return ImageDataEvent(index, uuid, began + message.start_time, message.real_time,
                              images)

    async def _expect(self, series_id: int, kind: type, deadline: float, what: str,
                      cancellable: bool = True) -> Received | None:
        """The next message of ``series_id``, which must be a ``kind``; None when cancelled."""
        while True:
            item = await self._receive(deadline, cancellable)
            if item is None:
                return None
            if isinstance(item, StreamError):
                raise RuntimeError(f"series {series_id}: bad stream message: {item}")
            if item.series_id != series_id:
                log.debug("ignored a %s message of series %s", type(item).__name__,
                          item.series_id)
                continue
            if not isinstance(item, kind):
                raise RuntimeError(f"series {series_id}: {type(item).__name__} arrived while "
                                   f"waiting for the {what} message")
            return item

    async def _receive(self, deadline: float, cancellable: bool) -> Received | None:
        assert self._stream is not None
        waiters: set[asyncio.Future[Any]] = {getter := asyncio.ensure_future(
            self._stream.queue.get())}
        if cancellable:
            waiters.add(cancelled := asyncio.ensure_future(self._cancel.wait()))
        timeout = deadline - asyncio.get_running_loop().time()
        done, pending = await asyncio.wait(
            waiters, timeout=None if math.isinf(timeout) else max(0.0, timeout),
            return_when=asyncio.FIRST_COMPLETED)
        for future in pending:
            future.cancel()
        if getter in done:
            return getter.result()  # type: ignore[no-any-return]
        if cancellable and cancelled in done:
            return None
        raise SeriesOverdue(f"no message within {timeout:.1f} s")

    async def _stop(self, command: str, trigger: asyncio.Future[Any] | None) -> None:
        """End the series on the detector; a detector that cannot be told is logged."""
        try:
            await self.api.command(command)
        except SimplonError as exc:
            log.warning("could not %s the series: %s", command, exc)
        if trigger is not None:
            await asyncio.gather(trigger, return_exceptions=True)

    # -- status ----------------------------------------------------------------------------------

    async def _poll_status(self) -> None:
        while True:
            await asyncio.sleep(STATUS_PERIOD)
            if self._recovering:
                continue
            clears = self._clears
            try:
                state = str(await self.api.get("detector", "status", "state"))
            except SimplonError as exc:
                runtime = DeviceRuntime(state="unreachable", errors=(str(exc),))
            else:
                runtime = DeviceRuntime(state="acquiring" if self._acquiring else state,
                                        raw_state=state, errors=_state_errors(state))
            if self._clears == clears:  # no clear began while it was read
                self._runtime = runtime


def _state_errors(state: str) -> tuple[str, ...]:
    if state == "error":
        return ("the detector is in state error",)
    if state == "na":
        return ("the detector is not initialized (was it restarted?)",)
    return ()


def _geometry(config: DeviceConfig) -> tuple[Any, ...]:
    """What the IOC's records were built for (channel energies may change, these not)."""
    return (tuple(c.label for c in config.channels), config.num_images, config.image_size,
            config.dtype)


def _config_path(key: Key) -> tuple[str, str, str]:
    return key[0], "config", key[1]


def _same(want: Any, have: Any) -> bool:
    if isinstance(want, (int, float)) and isinstance(have, (int, float)):
        return math.isclose(want, have, rel_tol=1e-6, abs_tol=1e-9)
    return bool(want == have)
