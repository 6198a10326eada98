"""caproto's threading client (pure Python CA)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from caproto.threading.client import Batch, Context

from .base import ClientAdapter, Closer, MonitorCallback, first_element


def _data(response: Any) -> Any:
    data = response.data
    return data[0] if len(data) == 1 else data


class CaprotoAdapter(ClientAdapter):
    library = "caproto"

    def open(self) -> None:
        self.context = Context()
        self.channels: dict[str, Any] = {}
        self._subscriber_callbacks: list[Any] = []  # caproto keeps only weak references

    def connect(self, names: Sequence[str]) -> None:
        missing = [name for name in names if name not in self.channels]
        for channel in self.context.get_pvs(*missing, timeout=self.timeout):
            self.channels[channel.name] = channel
        for name in names:
            self.channels[name].wait_for_connection(timeout=self.timeout)

    def get(self, name: str) -> Any:
        return _data(self.channels[name].read(timeout=self.timeout))

    def get_many(self, names: Sequence[str]) -> Sequence[Any]:
        """caproto's ``Batch``: every read request goes out in one send per circuit."""
        results: dict[str, Any] = {}
        finished = threading.Event()
        lock = threading.Lock()

        def make_receiver(name: str) -> Any:
            def receive(response: Any) -> None:
                with lock:
                    results[name] = _data(response)
                    if len(results) == len(names):
                        finished.set()
            return receive

        with Batch(timeout=self.timeout) as batch:
            for name in names:
                batch.read(self.channels[name], make_receiver(name))
        if not finished.wait(self.timeout):
            raise TimeoutError(f"{len(names) - len(results)} reads unanswered")
        return [results[name] for name in names]

    def put(self, name: str, value: float) -> None:
        self.channels[name].write([value], wait=True, timeout=self.timeout)

    def subscribe(self, name: str, callback: MonitorCallback) -> Closer:
        subscription = self.channels[name].subscribe()

        def deliver(_subscription: Any, response: Any) -> None:
            callback(first_element(response.data))

        self._subscriber_callbacks.append(deliver)
        subscription.add_callback(deliver)
        return subscription.clear

    def close(self) -> None:
        self.context.disconnect()
