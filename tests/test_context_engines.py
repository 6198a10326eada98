"""The Context against an in-memory engine registered for its own scheme: routing, waiting,
timeouts naming the PV, withdrawing what timed out, mixed-scheme bulk reads, release.

The engine below implements the contract of ``pvflow.io.contract`` and nothing more, so
these tests also show that the Context needs nothing else of an engine. Its answers come
from the real I/O thread, as a protocol engine's do; no sockets are involved.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from pvflow import PVTimeoutError, Reading
from pvflow.context import Context
from pvflow.io.completion import Completion
from pvflow.io.contract import ChannelInfo, Form, Sink, Slots
from pvflow.io.delivery import ConnectionChange, Dispatcher, Mailbox
from pvflow.io.loop import IOLoop

# Channel Access starts with every Context: give it nobody to search
QUIET_CA = {"EPICS_CA_AUTO_ADDR_LIST": "NO", "EPICS_CA_ADDR_LIST": ""}


class MemoryChannel:
    def __init__(self, name: str):
        self.name = name
        self.value: Any = 0.0
        self.connected = False
        self.on_connect: list[Any] = []
        self.state = _State("searching")


class _State:
    def __init__(self, value: str):
        self.value = value


class MemoryRequest:
    def __init__(self, engine: MemoryEngine, request_id: int):
        self.engine = engine
        self.request_id = request_id

    def wait(self, done: Completion, seconds: float | None) -> bool:
        return done.wait(seconds)

    def withdraw(self) -> bool:
        self.engine.withdrawn.append(self.request_id)
        return self.engine.pending.pop(self.request_id, None) is not None


class MemoryBulk:
    def __init__(self, engine: MemoryEngine, ids: dict[int, int], plan: MemoryPlan | None):
        self.engine = engine
        self.ids = ids  # slot -> request id
        self.plan = plan

    def withdraw(self, slots: list[int]) -> None:
        for slot in slots:
            if slot in self.ids:
                MemoryRequest(self.engine, self.ids[slot]).withdraw()


class MemoryPlan:
    def __init__(self, engine: MemoryEngine, channels: list[MemoryChannel], slots: list[int]):
        self.engine = engine
        self.channels = channels
        self.slots = slots
        self.sent = 0

    @property
    def valid(self) -> bool:
        return all(channel.connected for channel in self.channels)

    def send(self, batch: Slots) -> MemoryBulk:
        self.sent += 1
        return self.engine.read_many(self.channels, self.slots, Form.VALUE, False, batch,
                                     plan=False)


class MemoryEngine:
    """Values in a dict; a channel connects when the test says so; reads are answered on
    the I/O thread unless ``silent``."""

    def __init__(self, scheme: str, loop: IOLoop):
        self.scheme = scheme
        self.loop = loop
        self.by_name: dict[str, MemoryChannel] = {}
        self.pending: dict[int, tuple[MemoryChannel, Sink, Any]] = {}
        self.withdrawn: list[int] = []
        self.released: list[str] = []
        self.subscriptions: dict[int, tuple[MemoryChannel, Mailbox]] = {}
        self.silent = False
        self.closed = False
        self.waiting = threading.Event()  # set when a request waits for a connection
        self._next_id = 0
        self._lock = threading.Lock()

    # helpers for the tests
    def connect_now(self, name: str) -> None:
        channel = self.by_name[name]

        def connected() -> None:
            with self._lock:
                channel.connected = True
                channel.state = _State("connected")
                actions, channel.on_connect = channel.on_connect, []
            for action in actions:
                action()

        self.loop.call_soon(connected)

    def _answer(self, request_id: int) -> None:
        found = self.pending.pop(request_id, None)
        if found is not None:
            channel, sink, answer = found
            sink(answer(channel) if callable(answer) else answer)

    def _issue(self, channel: MemoryChannel, sink: Sink, answer: Any) -> int:
        with self._lock:
            self._next_id += 1
            request_id = self._next_id
        self.pending[request_id] = (channel, sink, answer)

        def go() -> None:
            if not self.silent:
                self.loop.call_soon(self._answer, request_id)

        with self._lock:
            if channel.connected:
                go()
            else:
                channel.on_connect.append(go)
                self.waiting.set()
        return request_id

    # the engine contract
    def channel(self, name: str) -> MemoryChannel:
        return self.channels([name])[0]

    def channels(self, names: Iterable[str]) -> list[MemoryChannel]:
        return [self.by_name.setdefault(name, MemoryChannel(name)) for name in names]

    def start_read(self, channel: MemoryChannel, form: Form, sink: Sink, as_string: bool,
                   count: int | None, waited: bool = False) -> MemoryRequest:
        def answer(read: MemoryChannel) -> Any:
            return read.value if form is Form.VALUE else Reading(read.value, timestamp=1.0)

        return MemoryRequest(self, self._issue(channel, sink, answer))

    def read_many(self, channels: list[MemoryChannel], slots: list[int], form: Form,
                  as_string: bool, batch: Slots, plan: bool = True) -> MemoryBulk:
        ids = {}
        for channel, slot in zip(channels, slots):
            ids[slot] = self.start_read(channel, form, _SlotSink(batch, slot), as_string,
                                        None).request_id
        reusable = plan and form is Form.VALUE and all(channel.connected for channel in channels)
        return MemoryBulk(self, ids, MemoryPlan(self, channels, slots) if reusable else None)

    def start_connect(self, channel: MemoryChannel, batch: Slots, slot: int) -> MemoryRequest:
        return MemoryRequest(self, self._issue(channel, _SlotSink(batch, slot), True))

    def put(self, channel: MemoryChannel, value: Any, sink: Sink | None) -> MemoryRequest:
        if not isinstance(value, float):
            raise ValueError(f"cannot put {value!r} to {self.scheme}://{channel.name}")

        def stored(written: MemoryChannel) -> None:
            written.value = value

        return MemoryRequest(self, self._issue(channel, lambda _: sink and sink(None), stored))

    def subscribe(self, channel: MemoryChannel, form: Form, mask: int, mailbox: Mailbox,
                  server_queue_size: int, request_text: str | None, as_string: bool,
                  dtype: Any = None) -> int:
        with self._lock:
            self._next_id += 1
            self.subscriptions[self._next_id] = (channel, mailbox)
        mailbox.post(ConnectionChange(True))
        mailbox.post(Reading(channel.value, timestamp=2.0))
        return self._next_id

    def unsubscribe(self, subscription: Any) -> None:
        self.subscriptions.pop(subscription)[1].close()

    def watch(self, channel: MemoryChannel, mailbox: Mailbox) -> None:
        mailbox.post(ConnectionChange(channel.connected))

    def unwatch(self, channel: MemoryChannel, mailbox: Mailbox) -> None:
        mailbox.close()

    def info(self, channel: MemoryChannel, sink: Sink) -> MemoryRequest:
        sink(ChannelInfo(channel.name, "memory", "double", 1, True, True, "connected"))
        return MemoryRequest(self, 0)

    def timeout_error(self, channel: MemoryChannel, what: str, timeout: float | None
                      ) -> PVTimeoutError:
        return PVTimeoutError(f"{what} of {self.scheme}://{channel.name}: no answer within "
                              f"{timeout} s", pv=channel.name)

    def release(self, channels: Iterable[MemoryChannel]) -> None:
        for channel in channels:
            self.released.append(channel.name)
            del self.by_name[channel.name]

    @property
    def remote_calls(self) -> MemoryEngine | None:
        return self if self.scheme == "calls" else None

    def rpc(self, channel: MemoryChannel, argument: Any, sink: Sink) -> MemoryRequest:
        return MemoryRequest(self, self._issue(channel, sink, {"echo": argument}))

    def introspect(self, channel: MemoryChannel, sink: Sink) -> MemoryRequest:
        return MemoryRequest(self, self._issue(channel, sink, "double"))

    def close(self) -> None:
        self.closed = True

    def stats(self) -> dict[str, int]:
        return {"channels": len(self.by_name)}


class _SlotSink:
    def __init__(self, batch: Slots, slot: int):
        self.batch = batch
        self.slot = slot

    def __call__(self, value: Any) -> None:
        self.batch.set(self.slot, value)


@pytest.fixture
def engines() -> dict[str, MemoryEngine]:
    return {}


@pytest.fixture
def context(engines: dict[str, MemoryEngine]) -> Iterable[Context]:
    def factory(scheme: str) -> Any:
        def make(env: Mapping[str, str] | None, loop: IOLoop, dispatcher: Dispatcher
                 ) -> MemoryEngine:
            engines[scheme] = MemoryEngine(scheme, loop)
            return engines[scheme]
        return make

    with Context(QUIET_CA, timeout=5.0, engines={scheme: factory(scheme) for scheme in
                                                 ("mem", "other", "calls")}) as context:
        yield context


def _connected(context: Context, engine_name: str, engines: dict[str, MemoryEngine],
               *names: str) -> MemoryEngine:
    context.watch(f"{engine_name}://{names[0]}", lambda connected: None).close()  # starts it
    engine = engines[engine_name]
    for name in names:
        engine.channel(name)
        engine.connect_now(name)
    context.connect([f"{engine_name}://{name}" for name in names])
    return engine


def test_a_scheme_routes_to_its_engine_started_on_first_use(context, engines) -> None:
    assert "mem" not in engines
    engine = _connected(context, "mem", engines, "x")
    engine.by_name["x"].value = 4.5
    assert context.get("mem://x") == 4.5
    reading = context.get("mem://x", form="time")
    assert reading.value == 4.5 and reading.name == "mem://x"
    assert "other" not in engines  # an engine nobody named never starts


def test_an_unknown_scheme_is_refused_naming_those_known(context) -> None:
    with pytest.raises(ValueError, match=r"unknown scheme 'nope://'.*mem://"):
        context.get("nope://x")


def test_a_get_waits_for_the_connection(context, engines) -> None:
    engine = _connected(context, "mem", engines, "first")
    engine.waiting.clear()
    results: list[Any] = []
    reader = threading.Thread(target=lambda: results.append(context.get("mem://late",
                                                                        timeout=None)))
    reader.start()
    assert engine.waiting.wait(5)
    engine.by_name["late"].value = 7.0
    engine.connect_now("late")
    reader.join(5)
    assert results == [7.0]


def test_a_timeout_names_the_pv_and_withdraws_the_request(context, engines) -> None:
    engine = _connected(context, "mem", engines, "quiet")
    engine.silent = True
    with pytest.raises(PVTimeoutError, match="get of mem://quiet") as raised:
        context.get("mem://quiet", timeout=0.05)
    assert raised.value.pv == "quiet"
    assert engine.withdrawn and not engine.pending


def test_an_async_timeout_withdraws_the_request_too(context, engines) -> None:
    engine = _connected(context, "mem", engines, "quiet")
    engine.silent = True
    with pytest.raises(PVTimeoutError, match="mem://quiet"):
        asyncio.run(context.get_async("mem://quiet", timeout=0.05))
    assert engine.withdrawn and not engine.pending


def test_get_many_mixes_schemes_and_reports_the_unconnected_by_name(context, engines) -> None:
    mem = _connected(context, "mem", engines, "a", "b")
    other = _connected(context, "other", engines, "c")
    mem.by_name["a"].value, mem.by_name["b"].value, other.by_name["c"].value = 1.0, 2.0, 3.0
    results = context.get_many(["mem://a", "other://c", "mem://never", "mem://b"],
                               timeout=0.2)
    assert [results["mem://a"], results["other://c"], results["mem://b"]] == [1.0, 3.0, 2.0]
    assert isinstance(results["mem://never"], PVTimeoutError)
    assert "mem://never" in str(results["mem://never"])
    assert len(mem.withdrawn) == 1 and not other.withdrawn  # only the unanswered read


def test_a_list_read_again_goes_through_its_engines_plan(context, engines) -> None:
    mem = _connected(context, "mem", engines, "a", "b")
    assert context.get_many(["mem://a", "mem://b"]) == {"mem://a": 0.0, "mem://b": 0.0}
    mem.by_name["b"].value = 9.0
    assert context.get_many(["mem://a", "mem://b"]) == {"mem://a": 0.0, "mem://b": 9.0}
    (plan,) = context._plans.values()
    assert plan.sent == 1


def test_async_get_many_and_connect_time_out_by_name(context, engines) -> None:
    _connected(context, "mem", engines, "a")

    async def scenario() -> dict[str, Any]:
        with pytest.raises(PVTimeoutError, match="mem://gone"):
            await context.connect_async(["mem://a", "mem://gone"], timeout=0.05)
        return await context.get_many_async(["mem://a", "mem://gone"], timeout=0.05)

    results = asyncio.run(scenario())
    assert results["mem://a"] == 0.0 and isinstance(results["mem://gone"], PVTimeoutError)


def test_put_connects_first_then_waits_for_the_server(context, engines) -> None:
    engine = _connected(context, "mem", engines, "first")
    engine.waiting.clear()
    putter = threading.Thread(target=lambda: context.put("mem://target", 2.5))
    putter.start()
    assert engine.waiting.wait(5)
    engine.connect_now("target")
    putter.join(5)
    assert engine.by_name["target"].value == 2.5
    with pytest.raises(ValueError, match="mem://target"):
        context.put("mem://target", "not a number")


def test_put_with_a_callback_and_its_async_twin(context, engines) -> None:
    engine = _connected(context, "mem", engines, "target")
    done = threading.Event()
    outcome: list[Any] = []
    context.put("mem://target", 1.5, callback=lambda error: (outcome.append(error),
                                                             done.set()))
    assert done.wait(5) and outcome == [None]
    asyncio.run(context.put_async("mem://target", 3.5))
    assert engine.by_name["target"].value == 3.5
    done.clear()
    asyncio.run(context.put_async("mem://target", 4.5, callback=lambda error: done.set()))
    assert done.wait(5) and engine.by_name["target"].value == 4.5


def test_release_forgets_the_route(context, engines) -> None:
    engine = _connected(context, "mem", engines, "a")
    first = engine.by_name["a"]
    context.release(["mem://a"])
    assert engine.released == ["a"]
    engine.waiting.clear()
    with pytest.raises(PVTimeoutError):
        context.get("mem://a", timeout=0.05)  # a new channel, not connected yet
    assert engine.by_name["a"] is not first


def test_subscription_delivers_named_readings_and_closes(context, engines) -> None:
    engine = _connected(context, "mem", engines, "a")
    got: list[Reading] = []
    delivered = threading.Event()
    subscription = context.subscribe("mem://a", lambda reading: (got.append(reading),
                                                                 delivered.set()))
    assert delivered.wait(5)
    assert got[0].name == "mem://a" and got[0].timestamp == 2.0
    subscription.close()
    assert not engine.subscriptions and subscription.mailbox.closed


def test_info_names_the_pv_as_asked(context, engines) -> None:
    _connected(context, "mem", engines, "a")
    assert context.info("mem://a").name == "mem://a"
    assert asyncio.run(context.info_async("mem://a")).address == "memory"


def test_rpc_needs_an_engine_with_remote_calls(context, engines) -> None:
    _connected(context, "mem", engines, "a")
    with pytest.raises(ValueError, match="mem://a: RPC"):
        context.rpc("mem://a", 1)
    _connected(context, "calls", engines, "service")
    assert context.rpc("calls://service", 5) == {"echo": 5}
    assert asyncio.run(context.rpc_async("calls://service", 6)) == {"echo": 6}


def test_stats_and_close_cover_every_started_engine(context, engines) -> None:
    _connected(context, "mem", engines, "a", "b")
    stats = context.stats()
    assert stats["mem_channels"] == 2 and "channels" in stats  # CA's, unprefixed
    context.close()
    assert engines["mem"].closed
