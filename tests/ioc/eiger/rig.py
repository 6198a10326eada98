"""The Eiger backend and the simulator in one event loop, talking HTTP and ZeroMQ on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp

from pvflow.ioc.detector.backends.eiger import EigerDetector
from pvflow.ioc.detector.backends.eiger.sim import SimEiger
from pvflow.ioc.detector.events import DeviceEvent

SIZE = (64, 32)
EVENT_TIMEOUT = 10.0


class Rig:
    """``async with Rig(env) as rig``: an initialized backend against a fresh simulator."""

    def __init__(self, env: Mapping[str, str] | None = None, initialize: bool = True,
                 **simulator: Any) -> None:
        self.simulator = SimEiger(size=SIZE, initialize_time=0.05, **simulator)
        self._env = dict(env or {})
        self._initialize = initialize
        self.events: asyncio.Queue[DeviceEvent] = asyncio.Queue()
        self.backend: EigerDetector | None = None

    async def __aenter__(self) -> Rig:
        await self.simulator.start()
        env = {"EIGER_DEVICE_HOST": "127.0.0.1", "EIGER_API_PORT": str(self.simulator.api_port),
               "EIGER_STREAM_PORT": str(self.simulator.stream_port), "EIGER_HTTP_TIMEOUT": "5",
               **self._env}
        self.backend = EigerDetector(self.events.put_nowait, env)
        if self._initialize:
            await self.backend.initialize()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.backend is not None:
            await self.backend.close()
        await self.simulator.stop()

    async def next_event(self) -> DeviceEvent:
        return await asyncio.wait_for(self.events.get(), EVENT_TIMEOUT)

    def drained(self) -> list[DeviceEvent]:
        found = []
        while not self.events.empty():
            found.append(self.events.get_nowait())
        return found

    async def http(self, method: str, path: str, body: Any = None) -> Any:
        """A request to the simulator as another client would make it (curl, a GUI)."""
        url = f"http://127.0.0.1:{self.simulator.api_port}{path}"
        async with aiohttp.ClientSession() as session:
            async with session.request(method, url, json=body) as response:
                response.raise_for_status()
                return await response.json()
