"""aioca (libca under asyncio), timed inside its own event loop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aioca

from .base import AsyncClientAdapter, Closer, MonitorCallback, first_element


class AiocaAdapter(AsyncClientAdapter):
    library = "aioca"

    async def connect(self, names: Sequence[str]) -> None:  # type: ignore[override]
        await aioca.connect(list(names), timeout=self.timeout)

    async def get(self, name: str) -> Any:  # type: ignore[override]
        return await aioca.caget(name, timeout=self.timeout)

    async def get_many(self, names: Sequence[str]) -> Sequence[Any]:  # type: ignore[override]
        return await aioca.caget(list(names), timeout=self.timeout)

    async def connect_and_read(self, names: Sequence[str]) -> Sequence[Any]:  # type: ignore[override]
        return await self.get_many(names)  # caget of a list connects as it goes

    async def put(self, name: str, value: float) -> None:  # type: ignore[override]
        await aioca.caput(name, value, wait=True, timeout=self.timeout)

    def subscribe(self, name: str, callback: MonitorCallback) -> Closer:
        async def start() -> aioca.Subscription:  # aioca binds a subscription to the running loop
            # all_updates: without it aioca hands over only the newest value when callbacks lag
            return aioca.camonitor(name, lambda value: callback(first_element(value)),
                                   all_updates=True)

        return self.run(start).close
