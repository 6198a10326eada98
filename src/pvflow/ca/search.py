"""CA name resolution over UDP: batched searches and beacons (transport layer).

Many names go into one datagram (up to an Ethernet MTU); when to ask for which channel is
:class:`pvflow.io.search_schedule.SearchSchedule`'s business. Beacons reach us through a CA
repeater, when one runs on this host.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from ..io.name_search import NameSearchBase
from ..io.search_schedule import send_to_all
from .channel import Channel
from .protocol import (HEADER_SIZE, Beacon, SearchResponse, decode_datagram, repeater_register,
                       search, version)

log = logging.getLogger("pvflow.ca.search")

MAX_DATAGRAM = 1450


def search_datagrams(channels: Iterable[Channel]) -> list[bytes]:
    """Pack search requests for ``channels`` into as few datagrams as fit the MTU."""
    datagrams: list[bytes] = []
    head = version()
    parts: list[bytes] = [head]
    size = len(head)
    for channel in channels:
        message = search(channel.wire_name, channel.cid)
        if size + len(message) > MAX_DATAGRAM and len(parts) > 1:
            datagrams.append(b"".join(parts))
            parts, size = [head], len(head)
        parts.append(message)
        size += len(message)
    if len(parts) > 1:
        datagrams.append(b"".join(parts))
    return datagrams


def _search_size(channel: Channel) -> int:
    return HEADER_SIZE + len(channel.wire_name)


class NameSearch(NameSearchBase[Channel]):
    """The UDP socket that asks for the channels still searching (their schedule is shared
    with pvAccess), and the beacons that restart it. I/O thread only."""

    log = log

    def __init__(self, targets: Iterable[tuple[str, int]], repeater_port: int,
                 on_responses: Callable[[list[SearchResponse]], None],
                 call_later: Callable[[float, Callable[[], None]], object]):
        super().__init__(targets, call_later, _search_size, MAX_DATAGRAM - HEADER_SIZE)
        self.repeater_port = repeater_port
        self._on_responses = on_responses

    def register_with_repeater(self) -> None:
        """Ask a CA repeater on this host to forward server beacons to us (if one runs)."""
        try:
            self.socket.sendto(repeater_register(), ("127.0.0.1", self.repeater_port))
        except OSError:
            pass

    def _send(self, channels: list[Channel]) -> int:
        return send_to_all(self.socket, search_datagrams(channels), self.targets, log)

    def _received(self, data: bytes, host: str) -> None:
        """The answers of a datagram go on together (each opens room for more names; one
        flush of each circuit creates their channels)."""
        messages = decode_datagram(data, host)
        answers = [message for message in messages if type(message) is SearchResponse]
        if answers:
            self._on_responses(answers)
        if len(answers) < len(messages):
            for message in messages:
                if isinstance(message, Beacon):
                    self._on_beacon(message)

    def _on_beacon(self, beacon: Beacon) -> None:
        self._beacon_from((beacon.host, beacon.port))
