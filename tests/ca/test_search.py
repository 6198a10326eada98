"""Name search without sockets' help: datagram packing, back-off, beacons."""

from __future__ import annotations

import time

from pvflow.ca import protocol
from pvflow.ca.channel import Channel
from pvflow.ca.search import MAX_DATAGRAM, NameSearch, search_datagrams
from pvflow.io.search_schedule import MAX_INTERVAL, next_interval


def test_names_are_packed_into_few_datagrams_under_the_mtu() -> None:
    channels = [Channel(f"BEAMLINE:DETECTOR:CHANNEL{i}:VALUE", i) for i in range(1000)]
    datagrams = search_datagrams(channels)
    assert all(len(datagram) <= MAX_DATAGRAM for datagram in datagrams)
    message = len(protocol.search(channels[0].name, 0))
    per_datagram = (MAX_DATAGRAM - len(protocol.version())) // message
    assert len(datagrams) == -(-1000 // per_datagram)  # every datagram filled but the last
    cids = []
    for datagram in datagrams:
        offset = 0
        while (parsed := protocol.read_header(datagram, offset, len(datagram))) is not None:
            if parsed[0] == protocol.Command.SEARCH:
                cids.append(parsed[3])
            offset = parsed[6]
    assert cids == list(range(1000))


def test_back_off_doubles_to_a_cap() -> None:
    intervals = [next_interval(attempt) for attempt in range(12)]
    assert intervals[1] == 2 * intervals[0]
    assert intervals == sorted(intervals) and intervals[-1] == MAX_INTERVAL


def test_a_new_server_beacon_resets_the_back_off() -> None:
    scheduled: list[float] = []
    search = NameSearch([], 0, lambda response: None,
                        lambda delay, callback: scheduled.append(delay))
    try:
        channel = Channel("X:missing", 1)
        search.schedule.add(channel)
        channel.search_attempt, channel.search_due = 7, 1e12  # deep into the back-off
        search._on_beacon(protocol.Beacon("127.0.0.1", 5064, 1))
        assert channel.search_attempt == 0 and channel.search_due <= time.monotonic()
        channel.search_attempt = 7
        search._on_beacon(protocol.Beacon("127.0.0.1", 5064, 2))  # known server: no reset
        assert channel.search_attempt == 7
    finally:
        search.close()
