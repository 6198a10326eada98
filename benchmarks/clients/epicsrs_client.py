"""ophyd-epicsrs through its native API (the Rust client without ophyd's shim on top).

The process-wide contexts come from ``get_ca_context``/``get_pva_context``; ``bulk_get`` batches
all reads into one TCP write per server. CA ``bulk_get`` returns bare values, PVA ``bulk_get``
returns metadata mappings: ``_value`` hides that difference.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import ophyd_epicsrs

from .base import ClientAdapter, Closer, MonitorCallback, first_element


class EpicsRsCaAdapter(ClientAdapter):
    library = "ophyd-epicsrs"

    def open(self) -> None:
        self.context = self._make_context()
        self.channels: dict[str, Any] = {}

    def _make_context(self) -> Any:
        return ophyd_epicsrs.get_ca_context()

    @staticmethod
    def _value(result: Any) -> Any:
        return result

    def connect(self, names: Sequence[str]) -> None:
        """All connections awaited together: a PVA channel searches only once waited on, so
        sequential ``wait_for_connection`` calls would cost one search round trip each."""
        created = [self.channels.setdefault(name, self.context.create_pv(name)) for name in names]

        async def connect_all() -> list[bool]:
            return await asyncio.gather(*(channel.connect_async(self.timeout)
                                          for channel in created))

        connected = asyncio.run(connect_all())
        if not all(connected):
            raise TimeoutError(f"{connected.count(False)} channels did not connect")

    def get(self, name: str) -> Any:
        return self.channels[name].get_with_metadata(timeout=self.timeout)["value"]

    def get_many(self, names: Sequence[str]) -> Sequence[Any]:
        results = self.context.bulk_get(list(names), timeout=self.timeout)
        return [self._value(results[name]) for name in names]

    def connect_and_read(self, names: Sequence[str]) -> Sequence[Any]:
        return self.get_many(names)  # bulk_get connects the names it has not seen

    def put(self, name: str, value: float) -> None:
        self.channels[name].put(value, wait=True, timeout=self.timeout)

    def subscribe(self, name: str, callback: MonitorCallback) -> Closer:
        channel = self.channels[name]
        channel.set_monitor_callback(lambda **update: callback(first_element(update["value"])))
        return channel.clear_monitors


class EpicsRsPvaAdapter(EpicsRsCaAdapter):
    protocol = "pva"

    def _make_context(self) -> Any:
        return ophyd_epicsrs.get_pva_context()

    @staticmethod
    def _value(result: Any) -> Any:
        return result["value"]
