"""A protocol-level Eiger2 simulator: the SIMPLON HTTP API and Stream V2 on loopback.

It is what the backend talks to in the tests and what a user points an IOC at for a dry run
(``pvflow sim eiger``). It keeps the detector's configuration, status and series counter,
answers ``initialize``/``arm``/``trigger``/``disarm``/``abort``/``cancel``, and pushes CBOR
start/image/end messages with the configured compression (``bslz4``, ``lz4`` or ``none``).
In the external-gate mode (``trigger_mode=extg``) it plays the gate generator too: ``nexpi``
pulses per image at ``gate_frequency`` Hz, one or two images per trigger (``extg_mode``).

Faults, set with :meth:`SimEiger.inject` or ``PUT /sim/faults``:
``http_errors`` (the next N API requests answer HTTP 500; ``http_errors_on`` limits that to
paths containing a text), ``drop_image`` (that image id is never sent), ``corrupt_image``
(that image id is sent truncated), ``image_delay`` (seconds each image is held back),
``no_gate`` (no gate pulses arrive); ``POST /sim/reboot`` (or :meth:`reboot`) makes the detector unreachable for a while
and brings it back uninitialized with its default configuration.

Every image is :func:`sim_image` of a running counter, so a test can check each pixel.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
import zmq
import zmq.asyncio
from aiohttp import web

from .stream import encode, rational

log = logging.getLogger("pvflow.ioc.detector.eiger.sim")

TIME_BASE = 10_000_000  # ticks per second of the image start/stop/real times
CHOICES = {"trigger_mode": ("ints", "inte", "exts", "exte", "extg"),
           "extg_mode": ("single", "double"),
           "compression": ("bslz4", "lz4", "none"),
           "threshold/2/mode": ("enabled", "disabled"),
           "mode": ("enabled", "disabled"),
           "format": ("legacy", "cbor"),
           "header_detail": ("all", "basic", "none")}
READ_ONLY = {"x_pixels_in_detector", "y_pixels_in_detector", "x_pixel_size", "y_pixel_size",
             "bit_depth_image", "description", "detector_number"}


def default_config(size: tuple[int, int]) -> dict[str, dict[str, Any]]:
    """The factory settings the detector returns to after a reboot."""
    return {
        "detector": {
            "trigger_mode": "ints", "extg_mode": "single", "nimages": 1, "ntrigger": 1,
            "nexpi": 1, "count_time": 0.5, "frame_time": 0.5, "compression": "bslz4",
            "threshold/1/energy": 7000.0, "threshold/2/energy": 14000.0,
            "threshold/2/mode": "disabled", "bit_depth_image": 16,
            "x_pixels_in_detector": size[0], "y_pixels_in_detector": size[1],
            "x_pixel_size": 7.5e-5, "y_pixel_size": 7.5e-5,
            "description": "Dectris EIGER2 Si 500K (simulated)", "detector_number": "E-SIM-0001",
        },
        "stream": {"mode": "disabled", "format": "legacy", "header_detail": "basic"},
    }


def sim_image(counter: int, channel: int, size: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    """Image ``counter`` of channel number ``channel``: shape (height, width), a gradient
    that differs per channel, with the counter in pixel (0, 0)."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    image = ((x + 3 * y + 1000 * channel) % 4096).astype(dtype)
    image[0, 0] = counter % (np.iinfo(dtype).max + 1)
    return image


@dataclasses.dataclass
class Faults:
    http_errors: int = 0
    http_errors_on: str = ""  # only requests whose path contains this fail
    drop_image: int | None = None
    corrupt_image: int | None = None  # that image id is sent as a truncated message
    image_delay: float = 0.0
    no_gate: bool = False


class SimEiger:
    """Serve one simulated detector; :meth:`start` binds (port 0 picks a free one)."""

    def __init__(self, host: str = "127.0.0.1", api_port: int = 0, stream_port: int = 0,
                 size: tuple[int, int] = (1028, 512), version: str = "1.8.0",
                 gate_frequency: float = 104500.0, initialize_time: float = 0.2) -> None:
        self.host, self.api_port, self.stream_port = host, api_port, stream_port
        self.size, self.version = size, version
        self.gate_frequency, self.initialize_time = gate_frequency, initialize_time
        self.faults = Faults()
        self.config = default_config(size)
        self.state = "na"
        self.series_id = 0
        self.series_unique_id = ""
        self.arms = 0
        self._series_date = datetime.datetime.now(datetime.timezone.utc)
        self._series_t0 = 0.0
        self._images_sent = 0
        self._counter = 0
        self._producer: asyncio.Task[None] | None = None
        self._stop_after_image = False
        self._runner: web.AppRunner | None = None
        self._zmq = zmq.asyncio.Context()
        self._push = self._zmq.socket(zmq.PUSH)

    # -- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._push.setsockopt(zmq.LINGER, 0)
        if self.stream_port:
            self._push.bind(f"tcp://{self.host}:{self.stream_port}")
        else:
            self.stream_port = self._push.bind_to_random_port(f"tcp://{self.host}")
        await self.power_on()

    async def power_on(self) -> None:
        """Serve the API (again): a fresh server, as after a boot."""
        app = web.Application(middlewares=[self._http_faults])
        app.add_routes([
            web.get("/{subsystem}/api/version/", self._version),
            web.get("/{subsystem}/api/{version}/{group}/{key:.+}", self._get),
            web.put("/detector/api/{version}/command/{name}", self._command),
            web.put("/{subsystem}/api/{version}/config/{key:.+}", self._put),
            web.put("/sim/faults", self._put_faults),
            web.post("/sim/reboot", self._post_reboot),
            web.get("/sim/status", self._sim_status),
        ])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.api_port, reuse_address=True)
        await site.start()
        if not self.api_port:
            server = site._server  # the bound port is only known here
            self.api_port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def power_off(self) -> None:
        """Drop every connection and stop answering; the configuration is lost."""
        await self._stop_producer()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.config = default_config(self.size)
        self.state = "na"

    async def stop(self) -> None:
        await self.power_off()
        self._push.close()
        self._zmq.term()

    # -- test and user controls ----------------------------------------------------------------

    def inject(self, **faults: Any) -> None:
        """Set faults by name (see the module docstring); unknown names raise ValueError."""
        known = {f.name for f in dataclasses.fields(Faults)}
        unknown = sorted(set(faults) - known)
        if unknown:
            raise ValueError(f"unknown faults {unknown}; known: {sorted(known)}")
        for name, value in faults.items():
            setattr(self.faults, name, value)

    async def reboot(self, downtime: float) -> None:
        """Go away for ``downtime`` seconds, then come back uninitialized with defaults."""
        log.info("simulated reboot for %s s", downtime)
        await self.power_off()
        await asyncio.sleep(downtime)
        await self.power_on()
        log.info("reboot done: serving again, uninitialized")

    # -- HTTP handlers -------------------------------------------------------------------------

    @web.middleware
    async def _http_faults(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.faults.http_errors > 0 and not request.path.startswith("/sim/") \
                and self.faults.http_errors_on in request.path:
            self.faults.http_errors -= 1
            return web.Response(status=500, text="simulated internal error")
        response: web.StreamResponse = await handler(request)
        return response

    def _check_version(self, request: web.Request) -> None:
        if request.match_info["version"] != self.version:
            raise web.HTTPNotFound(text=f"API version {request.match_info['version']} is not "
                                        f"served; this detector speaks {self.version}")

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"value": self.version, "value_type": "string"})

    async def _get(self, request: web.Request) -> web.Response:
        self._check_version(request)
        subsystem, group, key = (request.match_info[k] for k in ("subsystem", "group", "key"))
        if group == "status":
            status = {"state": self.state, "error": []}
            if subsystem == "detector" and key in status:
                return web.json_response({"value": status[key]})
        elif group == "config" and key in self.config.get(subsystem, {}):
            value = self.config[subsystem][key]
            return web.json_response({"value": value, "value_type": type(value).__name__,
                                      "access_mode": "r" if key in READ_ONLY else "rw"})
        raise web.HTTPNotFound(text=f"no key {subsystem}/{group}/{key}")

    async def _put(self, request: web.Request) -> web.Response:
        self._check_version(request)
        subsystem, key = request.match_info["subsystem"], request.match_info["key"]
        settings = self.config.get(subsystem, {})
        if key not in settings:
            raise web.HTTPNotFound(text=f"no key {subsystem}/config/{key}")
        if key in READ_ONLY:
            raise web.HTTPBadRequest(text=f"{key} is read-only")
        if self.state == "na" and subsystem == "detector":
            raise web.HTTPBadRequest(text="the detector is not initialized")
        value = (await request.json()).get("value")
        settings[key] = self._validated(key, settings[key], value)
        log.info("config %s/%s = %r", subsystem, key, settings[key])
        return web.json_response([key])

    @staticmethod
    def _validated(key: str, current: Any, value: Any) -> Any:
        if key in CHOICES:
            if value not in CHOICES[key]:
                raise web.HTTPBadRequest(text=f"{key}: {value!r} is not one of {CHOICES[key]}")
            return value
        try:
            converted = type(current)(value)
        except (TypeError, ValueError):
            raise web.HTTPBadRequest(text=f"{key}: {value!r} is not a "
                                          f"{type(current).__name__}") from None
        if isinstance(converted, (int, float)) and converted <= 0:
            raise web.HTTPBadRequest(text=f"{key}: {value!r} must be positive")
        return converted

    async def _command(self, request: web.Request) -> web.Response:
        self._check_version(request)
        name = request.match_info["name"]
        handler = {"initialize": self._initialize, "arm": self._arm, "trigger": self._trigger,
                   "disarm": self._end_series, "abort": self._end_series,
                   "cancel": self._cancel}.get(name)
        if handler is None:
            raise web.HTTPNotFound(text=f"no command {name}")
        return web.json_response(await handler())

    async def _put_faults(self, request: web.Request) -> web.Response:
        try:
            self.inject(**await request.json())
        except (ValueError, TypeError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response(dataclasses.asdict(self.faults))

    async def _post_reboot(self, request: web.Request) -> web.Response:
        downtime = float((await request.json()).get("downtime", 1.0))
        asyncio.get_running_loop().call_soon(asyncio.ensure_future, self.reboot(downtime))
        return web.json_response({"downtime": downtime})

    async def _sim_status(self, request: web.Request) -> web.Response:
        return web.json_response({"state": self.state, "series_id": self.series_id,
                                  "arms": self.arms, "images": self._counter,
                                  "faults": dataclasses.asdict(self.faults),
                                  "config": self.config})

    # -- commands ------------------------------------------------------------------------------

    def _require(self, *states: str) -> None:
        if self.state not in states:
            raise web.HTTPBadRequest(text=f"not possible in state {self.state}")

    async def _initialize(self) -> None:
        await self._stop_producer()
        self.state = "initialize"
        await asyncio.sleep(self.initialize_time)
        self.state = "idle"

    async def _arm(self) -> dict[str, int]:
        self._require("idle")
        self.series_id += 1
        self.arms += 1
        self.series_unique_id = str(uuid.uuid4())
        self._series_date = datetime.datetime.now(datetime.timezone.utc)
        self._series_t0 = asyncio.get_running_loop().time()
        self._images_sent = 0
        self._stop_after_image = False
        self.state = "ready"
        detector = self.config["detector"]
        await self._send({
            "type": "start", "series_id": self.series_id,
            "series_unique_id": self.series_unique_id, "arm_date": self._series_date,
            "channels": self._channels(), "count_time": detector["count_time"],
            "frame_time": detector["frame_time"],
            "number_of_images": detector["nimages"] * detector["ntrigger"],
            "image_size_x": self.size[0], "image_size_y": self.size[1],
            "pixel_size_x": detector["x_pixel_size"], "pixel_size_y": detector["y_pixel_size"],
            "threshold_energy": {name: detector[f"threshold/{n + 1}/energy"]
                                 for n, name in enumerate(self._channels())},
            "detector_description": detector["description"],
            "detector_serial_number": detector["detector_number"]})
        if detector["trigger_mode"] == "extg" and not self.faults.no_gate:
            self._producer = asyncio.ensure_future(self._gated_series())
        return {"sequence id": self.series_id}

    async def _trigger(self) -> None:
        self._require("ready")
        if self.config["detector"]["trigger_mode"] != "ints":
            raise web.HTTPBadRequest(text="trigger needs trigger_mode ints")
        producer = self._producer = asyncio.ensure_future(self._timed_series())
        try:
            await asyncio.shield(producer)  # the real command returns after the exposure
        except asyncio.CancelledError:
            if not producer.cancelled():  # an abort ends the trigger, not the server
                raise

    async def _cancel(self) -> None:
        self._stop_after_image = True
        if self._producer is not None:
            await asyncio.wait({self._producer}, timeout=30)
        await self._end_series()

    async def _end_series(self) -> None:
        await self._stop_producer()
        if self.state in ("ready", "acquire"):
            await self._send({"type": "end", "series_id": self.series_id,
                              "series_unique_id": self.series_unique_id})
        if self.state != "na":
            self.state = "idle"

    async def _stop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None and not producer.done():
            producer.cancel()
            await asyncio.wait({producer})

    # -- image production ----------------------------------------------------------------------

    def _channels(self) -> list[str]:
        enabled = self.config["detector"]["threshold/2/mode"] == "enabled"
        return ["threshold_1", "threshold_2"] if enabled else ["threshold_1"]

    async def _timed_series(self) -> None:
        detector = self.config["detector"]
        self.state = "acquire"
        for _ in range(detector["nimages"]):
            await self._expose(detector["count_time"])
            if self._stop_after_image:
                break
        self.state = "ready"

    async def _gated_series(self) -> None:
        detector = self.config["detector"]
        per_trigger = 2 if detector["extg_mode"] == "double" else 1
        exposure = detector["nexpi"] / self.gate_frequency
        self.state = "acquire"
        for _ in range(detector["ntrigger"] * per_trigger):
            await self._expose(exposure)
            if self._stop_after_image:
                break
        self.state = "ready"

    async def _expose(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time() - self._series_t0
        await asyncio.sleep(seconds)
        ended = loop.time() - self._series_t0
        image_id = self._images_sent
        self._images_sent += 1
        counter, self._counter = self._counter, self._counter + 1
        if self.faults.drop_image == image_id:
            return
        if self.faults.image_delay:
            await asyncio.sleep(self.faults.image_delay)
        detector = self.config["detector"]
        dtype = np.dtype(f"uint{detector['bit_depth_image']}")
        data = {name: sim_image(counter, number, self.size, dtype)
                for number, name in enumerate(self._channels())}
        await self._send({
            "type": "image", "series_id": self.series_id,
            "series_unique_id": self.series_unique_id, "image_id": image_id,
            "series_date": self._series_date, "data": data,
            "start_time": rational(began, TIME_BASE), "stop_time": rational(ended, TIME_BASE),
            "real_time": rational(seconds, TIME_BASE)}, detector["compression"])

    async def _send(self, body: Mapping[str, Any], compression: str = "none") -> None:
        stream = self.config["stream"]
        if stream["mode"] != "enabled" or stream["format"] != "cbor":
            return
        frame = encode(body, compression)
        if body["type"] == "image" and body["image_id"] == self.faults.corrupt_image:
            frame = frame[:len(frame) // 2]
        await self._push.send(frame, copy=False)


async def serve(simulator: SimEiger, stop: asyncio.Event) -> None:
    """Run ``simulator`` until ``stop`` is set, announcing where it listens."""
    await simulator.start()
    print(json.dumps({"api": f"http://{simulator.host}:{simulator.api_port}",
                      "stream": f"tcp://{simulator.host}:{simulator.stream_port}",
                      "api_port": simulator.api_port, "stream_port": simulator.stream_port}),
          flush=True)
    try:
        await stop.wait()
    finally:
        await simulator.stop()
