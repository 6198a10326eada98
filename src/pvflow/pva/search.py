"""Name resolution over UDP: batched PVA searches with back-off (transport layer).

Many names per datagram (up to an Ethernet MTU); when to ask for which channel is the shared
:class:`pvflow.io.search_schedule.SearchSchedule`'s business, as for CA. A beacon from a
server not heard before restarts every back-off.
"""

from __future__ import annotations

import itertools
import logging
import struct
from collections.abc import Callable, Iterable

from ..errors import RemoteProtocolError
from ..io.name_search import NameSearchBase
from ..io.search_schedule import send_to_all
from .channel import Channel
from .protocol import (SEARCH_OVERHEAD, Beacon, SearchResponse, decode_datagram, search,
                       search_payload_size)

log = logging.getLogger("pvflow.pva.search")

MAX_DATAGRAM = 1400


def search_datagrams(channels: Iterable[Channel], reply_port: int, sequence: int) -> list[bytes]:
    """Pack searches for ``channels`` into as few datagrams as fit the MTU."""
    datagrams: list[bytes] = []
    batch: list[tuple[int, str]] = []
    size = SEARCH_OVERHEAD
    for channel in channels:
        needed = search_payload_size(channel.name)
        if batch and (size + needed > MAX_DATAGRAM or len(batch) == 0xFFFF):
            datagrams.append(search(sequence, reply_port, batch))
            batch, size = [], SEARCH_OVERHEAD
        batch.append((channel.cid, channel.name))
        size += needed
    if batch:
        datagrams.append(search(sequence, reply_port, batch))
    return datagrams


def _search_size(channel: Channel) -> int:
    return search_payload_size(channel.name)


class NameSearch(NameSearchBase[Channel]):
    """The UDP socket that asks for the channels still searching (their schedule is shared
    with CA), and the beacons that restart it. I/O thread only."""

    log = log

    def __init__(self, targets: Iterable[tuple[str, int]],
                 on_response: Callable[[SearchResponse], None],
                 call_later: Callable[[float, Callable[[], None]], object],
                 also_send: Callable[[list[Channel]], None] | None = None):
        super().__init__(targets, call_later, _search_size, MAX_DATAGRAM - SEARCH_OVERHEAD)
        self._on_response = on_response
        self._also_send = also_send  # name servers: the same searches over TCP
        self._sequence = itertools.count(1)
        self.port = self.socket.getsockname()[1]

    def _send(self, channels: list[Channel]) -> int:
        datagrams = search_datagrams(channels, self.port, next(self._sequence) & 0xFFFFFFFF)
        if self._also_send is not None:
            self._also_send(channels)
        return send_to_all(self.socket, datagrams, self.targets, log)

    def _received(self, data: bytes, host: str) -> None:
        try:
            messages = decode_datagram(data, host)
        except (RemoteProtocolError, ValueError, IndexError, struct.error) as exc:
            log.debug("bad datagram from %s: %s", host, exc)
            return
        for message in messages:
            if isinstance(message, SearchResponse):
                if message.found:
                    self._on_response(message)
            elif isinstance(message, Beacon):
                self.on_beacon(message)

    def on_beacon(self, beacon: Beacon) -> None:
        self._beacon_from(beacon.guid)
