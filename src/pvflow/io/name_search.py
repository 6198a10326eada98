"""The UDP half of name resolution both protocols share (transport layer): the search
socket, the schedule of the channels still searching, the receive loop, and beacons that
restart the schedule when a server appears. The protocol packs its searches and reads its
datagrams. I/O thread only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable
from typing import Generic

from .search_schedule import SearchableT, SearchSchedule, search_socket


class NameSearchBase(Generic[SearchableT]):
    """A search socket and its schedule; ``_send`` and ``_received`` are the protocol's."""

    log = logging.getLogger("pvflow.io.search")

    def __init__(self, targets: Iterable[tuple[str, int]],
                 call_later: Callable[[float, Callable[[], None]], object],
                 cost: Callable[[SearchableT], int], capacity: int):
        self.targets = list(targets)
        self.schedule: SearchSchedule[SearchableT] = SearchSchedule(self._send, call_later,
                                                                    cost, capacity)
        self._known_servers: set[Hashable] = set()
        self.socket = search_socket()
        # set by the protocol while a circuit waits for its handshake: back to the loop after
        # each answer, so the handshake does not wait behind a backlog of answers
        self.yield_to_circuits = False

    def _send(self, channels: list[SearchableT]) -> int:
        """Send the searches of ``channels``; how many datagrams that took."""
        raise NotImplementedError

    def _received(self, data: bytes, host: str) -> None:
        """Handle one datagram from ``host``."""
        raise NotImplementedError

    def on_readable(self, mask: int) -> None:
        while True:
            try:
                data, (host, _port) = self.socket.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ICMP port unreachable from a dead target, on some kernels
                self.log.debug("search socket: %s", exc)
                return
            self._received(data, host)
            if self.yield_to_circuits:
                self.yield_to_circuits = False
                return  # still readable: the loop comes back

    def _beacon_from(self, server: Hashable) -> None:
        """A server not heard before may have the names nobody answered: ask again now."""
        if server not in self._known_servers:
            self._known_servers.add(server)
            self.schedule.restart()

    def close(self) -> None:
        self.schedule.clear()
        self.socket.close()
