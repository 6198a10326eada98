"""pyepics (libca): ``epics.PV`` objects without auto-monitor, so every get is a round trip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import epics

from .base import ClientAdapter, Closer, MonitorCallback, first_element


class PyepicsAdapter(ClientAdapter):
    library = "pyepics"

    def open(self) -> None:
        epics.ca.initialize_libca()
        self.channels: dict[str, epics.PV] = {}
        self._subscriptions: list[Any] = []

    def connect(self, names: Sequence[str]) -> None:
        created = [self.channels.setdefault(name, epics.PV(name, auto_monitor=False))
                   for name in names]
        for channel in created:
            if not channel.wait_for_connection(self.timeout):
                raise TimeoutError(f"{channel.pvname} did not connect")

    def get(self, name: str) -> Any:
        return self.channels[name].get(use_monitor=False, timeout=self.timeout)

    def get_many(self, names: Sequence[str]) -> Sequence[Any]:
        """What ``epics.caget_many`` does: issue every request, then collect every reply."""
        channel_ids = [self.channels[name].chid for name in names]
        for channel_id in channel_ids:
            epics.ca.get(channel_id, wait=False)
        return [epics.ca.get_complete(channel_id, timeout=self.timeout) for channel_id in channel_ids]

    def connect_and_read(self, names: Sequence[str]) -> Sequence[Any]:
        """``epics.caget_many``: pyepics' own one-call connect-and-read of many names."""
        return epics.caget_many(list(names), connection_timeout=self.timeout, timeout=self.timeout)

    def put(self, name: str, value: float) -> None:
        self.channels[name].put(value, wait=True, timeout=self.timeout)

    def subscribe(self, name: str, callback: MonitorCallback) -> Closer:
        """A libca subscription on the connected channel (what an auto-monitored PV sets up)."""
        def deliver(value: Any, **_: Any) -> None:
            callback(first_element(value))

        *references, event_id = epics.ca.create_subscription(self.channels[name].chid,
                                                             callback=deliver)
        self._subscriptions.append((deliver, references))  # libca holds only C pointers
        return lambda: epics.ca.clear_subscription(event_id)
