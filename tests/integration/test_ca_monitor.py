"""Monitors: every update in order, slow callbacks isolated, reconnect after an IOC restart."""

from __future__ import annotations

import gc
import socket
import threading

import pytest

from pvflow import Context
from tests.conftest import standard_db
from tests.integration.background_reads import reading_meanwhile
from tests.servers import SoftIoc


class Collector:
    """Collects updates and lets a test wait for a condition without sleeping."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.connections: list[bool] = []
        self.events: list[object] = []
        self._changed = threading.Condition()

    def value(self, reading) -> None:
        with self._changed:
            self.values.append(reading.value)
            self.events.append(reading.value)
            self._changed.notify_all()

    def connection(self, connected: bool) -> None:
        with self._changed:
            self.connections.append(connected)
            self.events.append(connected)
            self._changed.notify_all()

    def wait_for(self, condition, timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(condition, timeout)


def test_every_update_in_order(context) -> None:
    collector = Collector()
    context.put("T:long", -1)
    with context.subscribe("T:long", collector.value):
        assert collector.wait_for(lambda: collector.values[-1:] == [-1])
        # rsrv squashes a subscription's updates once its event queue for a client is full
        # (flow control, whatever the client): bursts of 100, each ended by a put that
        # waits, stay within that queue, so any missing value is pvflow's loss
        for value in range(2000):
            context.put("T:long", value, wait=value % 100 == 99)
        assert collector.wait_for(lambda: collector.values[-1:] == [1999])
    assert collector.values == [-1, *range(2000)]


def test_gets_reading_their_own_answers_leave_every_update_in_order(context) -> None:
    # A waiting get reads its answer off the socket itself when no other thread reads it;
    # the updates before and after that answer on the same circuit stay the I/O thread's
    collector = Collector()
    context.put("T:long", -1)
    with context.subscribe("T:long", collector.value):
        assert collector.wait_for(lambda: collector.values[-1:] == [-1])
        with reading_meanwhile(context, {"T:ai": 1.5, "T:string": "hello"}) as wrong:
            for value in range(2000):  # in bursts, as above
                context.put("T:long", value, wait=value % 100 == 99)
            assert collector.wait_for(lambda: collector.values[-1:] == [1999])
    assert wrong == []
    assert collector.values == [-1, *range(2000)]


def test_slow_callback_does_not_delay_another_pv(context) -> None:
    release = threading.Event()
    fast = Collector()

    def slow(reading) -> None:
        release.wait(20)

    slow_subscription = context.subscribe("T:ao", slow)
    fast_subscription = context.subscribe("T:long", fast.value)
    try:
        for value in range(50):
            context.put("T:ao", float(value), wait=False)
        for value in range(100):
            context.put("T:long", value, wait=False)
        # the slow callback is still blocked on its first update while the fast PV completes
        assert fast.wait_for(lambda: fast.values[-1:] == [99])
        assert not release.is_set()
    finally:
        release.set()
        slow_subscription.close()
        fast_subscription.close()


def test_overflow_is_counted_not_silent(context) -> None:
    release = threading.Event()
    subscription = context.subscribe("T:long", lambda reading: release.wait(20), queue_size=5)
    try:
        for value in range(200):
            context.put("T:long", value)
        collector = Collector()
        with context.subscribe("T:long", collector.value):  # a witness that all 200 went by
            assert collector.wait_for(lambda: collector.values[-1:] == [199])
        assert subscription.dropped > 0
    finally:
        release.set()
        subscription.close()


def test_restart_reconnects_and_resumes() -> None:
    ioc = SoftIoc(standard_db("R:"))
    ioc.start()
    try:
        context = Context(ioc.env, timeout=5.0)
        collector = Collector()
        subscription = context.subscribe("R:long", collector.value,
                                         connection_callback=collector.connection)
        watcher = Collector()
        watch = context.watch("R:ai", watcher.connection)
        assert collector.wait_for(lambda: collector.values == [42])
        names = ["R:ai", "R:long", "R:string"]
        for _ in range(2):  # the second read reuses the first one's plan
            assert context.get_many(names) == {"R:ai": 1.5, "R:long": 42, "R:string": "hello"}
        ioc.stop()
        assert collector.wait_for(lambda: collector.connections == [True, False])
        ioc.start()  # same ports: the channel must find it again by searching
        assert collector.wait_for(lambda: collector.connections == [True, False, True], 30)
        context.put("R:long", 7)
        assert collector.wait_for(lambda: collector.values[-1:] == [7])
        assert collector.events.index(False) < len(collector.events) - 2
        assert context.get("R:ai") == 1.5
        # new server-side ids after the restart: the cached plan must not be reused
        assert context.get_many(names) == {"R:ai": 1.5, "R:long": 7, "R:string": "hello"}
        assert watcher.wait_for(lambda: watcher.connections == [True, False, True])
        watch.close()
        subscription.close()
        context.close()
    finally:
        ioc.close()


def test_malformed_server_closes_one_circuit_only(softioc) -> None:
    """A server that answers a search and then sends garbage costs only its own circuit."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    bad_env = {**softioc.env,
               "EPICS_CA_ADDR_LIST": f"127.0.0.1:{udp.getsockname()[1]} 127.0.0.1:{softioc.ca_port}"}
    from pvflow.ca import protocol

    def serve() -> None:
        data, sender = udp.recvfrom(4096)
        for message in _searches(data):
            reply = protocol.header(protocol.Command.SEARCH, 8, port, 0, 0xFFFFFFFF, message)
            udp.sendto(reply + b"\0\x0d" + b"\0" * 6, sender)
        connection, _ = listener.accept()
        connection.recv(4096)
        connection.sendall(protocol.header(protocol.Command.CREATE_CHAN, 0, 99, 1, 1, 1) * 4)
        connection.recv(4096)  # until the client hangs up
        connection.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    context = Context(bad_env, timeout=2.0)
    try:
        with pytest.raises(Exception):
            context.get("EVIL:pv", timeout=1.0)
        assert context.get("T:ai") == 1.5  # the good server's circuit is untouched
    finally:
        context.close()
        listener.close()
        udp.close()
        server.join(5)


def _searches(data: bytes) -> list[int]:
    from pvflow.ca.protocol import Command, read_header

    cids, offset = [], 0
    while (parsed := read_header(data, offset, len(data))) is not None:
        if parsed[0] == Command.SEARCH:
            cids.append(parsed[3])
        offset = parsed[6]
    return cids


def test_contexts_do_not_leak_threads_or_sockets(softioc) -> None:
    import os

    def open_files() -> int:
        return len(os.listdir(f"/proc/{os.getpid()}/fd"))

    warm = Context(softioc.env)
    warm.get("T:ai")
    warm.close()
    threads, files = threading.active_count(), open_files()
    for _ in range(200):
        with Context(softioc.env) as context:
            context.get("T:ai")
    gc.collect()
    assert threading.active_count() == threads
    assert open_files() <= files + 2


def test_ten_thousand_connect_release_cycles_leak_nothing(softioc) -> None:
    import os
    import tracemalloc

    def open_files() -> int:
        return len(os.listdir(f"/proc/{os.getpid()}/fd"))

    with Context(softioc.env) as context:
        for _ in range(200):  # warm up: caches, the circuit, the callback workers
            context.get("T:ai")
            context.release(["T:ai"])
        threads, files = threading.active_count(), open_files()
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for _ in range(10_000):
            assert context.get("T:ai") == 1.5
            context.release(["T:ai"])
        gc.collect()
        growth = sum(stat.size_diff for stat in
                     tracemalloc.take_snapshot().compare_to(before, "filename"))
        tracemalloc.stop()
        assert context.stats()["channels"] == 0
        assert threading.active_count() == threads and open_files() == files
        assert growth < 1_000_000, f"{growth} bytes kept after 10 000 cycles"


def test_silent_server_is_detected_by_echo_and_recovered() -> None:
    """A frozen IOC keeps its sockets open but answers nothing: only the echo notices."""
    import os
    import signal

    ioc = SoftIoc(standard_db("E:"))
    ioc.start()
    try:
        with Context({**ioc.env, "EPICS_CA_CONN_TMO": "1"}) as context:
            collector = Collector()
            watch = context.watch("E:ai", collector.connection)
            assert collector.wait_for(lambda: collector.connections == [True])
            os.kill(ioc.process.pid, signal.SIGSTOP)
            try:
                assert collector.wait_for(lambda: collector.connections == [True, False], 30)
            finally:
                os.kill(ioc.process.pid, signal.SIGCONT)
            assert collector.wait_for(lambda: collector.connections == [True, False, True], 30)
            assert context.get("E:ai") == 1.5
            watch.close()
    finally:
        ioc.close()
