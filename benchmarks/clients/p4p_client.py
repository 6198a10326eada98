"""p4p's thread Context over PVA."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from p4p.client.thread import Context

from .base import ClientAdapter, Closer, MonitorCallback, first_element


class P4pAdapter(ClientAdapter):
    protocol = "pva"
    library = "p4p"

    def open(self) -> None:
        self.context = Context("pva")

    def connect(self, names: Sequence[str]) -> None:
        self.get_many(names)  # p4p connects on first use; a get is its way to wait for it

    def get(self, name: str) -> Any:
        return self.context.get(name, timeout=self.timeout)

    def get_many(self, names: Sequence[str]) -> Sequence[Any]:
        return self.context.get(list(names), timeout=self.timeout)

    def connect_and_read(self, names: Sequence[str]) -> Sequence[Any]:
        return self.get_many(names)

    def put(self, name: str, value: float) -> None:
        # get=False: a scalar needs no Get before the Put to build its structure
        self.context.put(name, value, wait=True, get=False, timeout=self.timeout)

    def subscribe(self, name: str, callback: MonitorCallback) -> Closer:
        subscription = self.context.monitor(name, lambda value: callback(first_element(value)))
        return subscription.close

    def close(self) -> None:
        self.context.close()
