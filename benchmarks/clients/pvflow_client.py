"""pvflow's own client: ``pvflow.Context``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pvflow import Context

from .base import ClientAdapter, Closer, MonitorCallback, first_element


class PvflowAdapter(ClientAdapter):
    library = "pvflow"

    def open(self) -> None:
        self.context = Context()

    def connect(self, names: Sequence[str]) -> None:
        self.context.connect(list(names), timeout=self.timeout)

    def get(self, name: str) -> Any:
        return self.context.get(name)

    def get_many(self, names: Sequence[str]) -> Sequence[Any]:
        values = self.context.get_many(list(names))
        return [values[name] for name in names]

    def connect_and_read(self, names: Sequence[str]) -> Sequence[Any]:
        # get_many connects and reads in one pipelined call (search, create, read)
        return self.get_many(names)

    def put(self, name: str, value: float) -> None:
        self.context.put(name, value, wait=True)

    def subscribe(self, name: str, callback: MonitorCallback) -> Closer:
        def deliver(update: Any) -> None:
            callback(first_element(getattr(update, "value", update)))

        return self.context.subscribe(name, deliver).close

    def close(self) -> None:
        self.context.close()
