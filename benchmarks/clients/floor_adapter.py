"""What the two floors' adapters share: ids, circuits by server, and which new names sit
on which server (each floor encodes its own search and channel creation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import ClientAdapter

Server = tuple[str, int]


class FloorAdapter(ClientAdapter):
    """A floor client: ``targets`` to search, ``circuits`` by server, ``channels`` by name."""

    library = ""

    def open(self) -> None:
        self.targets = self._targets()
        self.circuits: dict[Server, Any] = {}
        self.channels: dict[str, Any] = {}  # name: (circuit, sid, ...)
        self.next_id = 1

    def _targets(self) -> list[Server]:
        raise NotImplementedError

    def _search(self, names: Sequence[str]) -> dict[Server, list[tuple[int, str]]]:
        raise NotImplementedError

    def _circuit(self, server: Server) -> Any:
        raise NotImplementedError

    def _ids(self, count: int) -> range:
        first, self.next_id = self.next_id, self.next_id + count
        return range(first, first + count)

    def _new_by_circuit(self, names: Sequence[str]) -> list[tuple[Any, list[tuple[int, str]]]]:
        """The names not connected yet, searched, as ``(circuit, [(cid, name)])`` per server."""
        new = [name for name in dict.fromkeys(names) if name not in self.channels]
        if not new:
            return []
        found = self._search(new)
        for server in found:
            if server not in self.circuits:
                self.circuits[server] = self._circuit(server)
        return [(self.circuits[server], pairs) for server, pairs in found.items()]

    def get(self, name: str) -> Any:
        return self.get_many([name])[0]

    def connect_and_read(self, names: Sequence[str]) -> Sequence[Any]:
        self.connect(names)
        return self.get_many(names)
