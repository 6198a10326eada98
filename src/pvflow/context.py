"""`Context`: pvflow's one public client surface (client API layer; integrations build on it).

Names route by prefix: ``ca://NAME`` and bare ``NAME`` go to Channel Access, ``pva://NAME``
to pvAccess. Every operation has a sync method and an ``*_async`` twin with the same
signature, errors and results: both start the same request through the engine and differ
only in how they wait (a lock for threads, a future resolved on the caller's loop for
asyncio), so the two can never drift apart.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .ca.channel import BulkRead, Channel
from .ca.client import BlockPlan, CAClient, DeferredReads
from .ca.config import CAConfig
from .ca.dbr import FORM_NAMES, Form, Native
from .arguments import checked_count, checked_timeout, scheme_of
from .ca.protocol import AccessRights, Monitor
from .errors import DisconnectedError, PVFlowError, PVTimeoutError
from .io.completion import Batch, Completion, asyncio_waiter
from .io.delivery import Mailbox, asyncio_schedule, call_in_worker, shared_dispatcher
from .io.loop import shared_loop
from .pva.client import PVAClient
from .pva.config import PVAConfig
from .reading import Reading


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()
"""Timeout sentinel: "use the Context's timeout"; ``None`` means wait forever."""

DEFAULT_MASK = Monitor.VALUE | Monitor.ALARM
MAX_PLANS = 64  # name lists whose bulk-read plan is kept


@dataclass(frozen=True)
class ChannelInfo:
    """What `pvflow info` shows: where a PV lives and what it holds."""

    name: str
    address: str | None
    native_type: str
    element_count: int
    read_access: bool
    write_access: bool
    state: str


class Subscription:
    """A running monitor; ``close()`` stops it. Counters say what happened to its updates."""

    def __init__(self, client: CAClient, inner: Any, mailbox: Mailbox):
        self._client = client
        self._inner = inner
        self.mailbox = mailbox

    @property
    def name(self) -> str:
        return self.mailbox.name

    @property
    def dropped(self) -> int:
        """Updates discarded because the callback fell ``queue_size`` updates behind."""
        return self.mailbox.dropped

    def close(self) -> None:
        self._client.unsubscribe(self._inner)

    def __repr__(self) -> str:
        mailbox = self.mailbox
        return (f"<Subscription {mailbox.name!r} {'closed' if mailbox.closed else 'open'}: "
                f"{mailbox.delivered} delivered, {mailbox.dropped} dropped>")

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Watch:
    """A running connection/access watch on one PV; ``close()`` stops it."""

    def __init__(self, client: CAClient, channel: Channel, mailbox: Mailbox):
        self._client = client
        self._channel = channel
        self._mailbox = mailbox

    def close(self) -> None:
        self._client.unwatch(self._channel, self._mailbox)

    def __repr__(self) -> str:
        state = "closed" if self._mailbox.closed else self._channel.state.value
        return f"<Watch {self._mailbox.name!r} {state}>"


class _Request:
    """One request on one channel, issued now or on connect; knows how to withdraw itself."""

    __slots__ = ("client", "channel", "actions", "ioids")

    def __init__(self, client: CAClient, channel: Channel):
        self.client = client
        self.channel = channel
        self.actions: list[Any] = []  # on-connect actions still registered on the channel
        self.ioids: list[int] = []

    def withdraw(self) -> bool:
        """True when nothing of it is left in flight (it can be reported as timed out)."""
        for action in self.actions:
            self.client.forget_action(self.channel, action)
        removed = [self.client.cancel(self.channel, ioid) for ioid in self.ioids]
        return all(removed) if removed else True


class _Many:
    """The requests of one bulk call, by slot: single requests, or slots of block reads."""

    __slots__ = ("requests", "deferred", "plans")

    def __init__(self, size: int):
        self.requests: list[_Request | None] = [None] * size
        self.deferred: list[tuple[CAClient, DeferredReads]] = []
        self.plans: list[tuple[CAClient, BulkRead]] = []

    def withdraw(self, slots: list[int]) -> None:
        for slot in slots:
            self.request(slot).withdraw()

    def request(self, slot: int) -> _Request:
        """The request of ``slot``; one inside a block is rebuilt on demand (rare: timeouts)."""
        found = self.requests[slot]
        if found is None:
            found = self.requests[slot] = self._from_blocks(slot)
        return found

    def _from_blocks(self, slot: int) -> _Request:
        for client, read in self.plans:
            request = _Request(client, read.channels[slot])
            request.ioids.append(read.base + slot)
            return request
        found: _Request | None = None
        for client, deferred in self.deferred:  # a CA CTRL slot sits in two blocks
            for read in deferred.reads:
                if slot in read.slots:
                    position = read.slots.index(slot)
                    found = found or _Request(client, read.channels[position])
                    found.ioids.append(read.base + position)
            for channel, channel_slot in deferred.slots.items():
                if channel_slot == slot:
                    found = found or _Request(client, channel)
                    found.actions.append(deferred.on_connect)
        if found is None:
            raise KeyError(slot)
        return found


class _JoinedSlots:
    """Bulk CTRL reads over CA: per slot a CTRL and a TIME reading, merged into one Reading
    for the batch. Filled on the I/O thread only, like the batch itself."""

    __slots__ = ("target", "first")

    def __init__(self, target: Batch):
        self.target = target
        self.first: dict[int, Any] = {}

    def set(self, index: int, value: Any) -> None:
        earlier = self.first.pop(index, None)
        if earlier is None:
            self.first[index] = value
        elif isinstance(earlier, BaseException) or isinstance(value, BaseException):
            self.target.set(index, earlier if isinstance(earlier, BaseException) else value)
        else:
            self.target.set(index, earlier.merged(value))


class _Join:
    """Merge a CTRL reading (metadata) and a TIME reading (timestamp) into one Reading."""

    __slots__ = ("parts", "sink")

    def __init__(self, sink: Callable[[Any], None]):
        self.parts: list[Any] = []
        self.sink = sink

    def part(self, value: Any) -> None:
        self.parts.append(value)
        if len(self.parts) == 2:
            errors = [part for part in self.parts if isinstance(part, BaseException)]
            self.sink(errors[0] if errors else self.parts[0].merged(self.parts[1]))


def _named(result: Any, name: str) -> Any:
    """A Reading stamped with the name it was asked for (decoders know channels, not names).
    Set in place, before anyone else sees it: copying a frozen Reading costs microseconds."""
    if isinstance(result, Reading):
        object.__setattr__(result, "name", name)
    return result


def _named_all(results: dict[str, Any]) -> dict[str, Any]:
    for name, result in results.items():
        _named(result, name)
    return results


def _shown_type(ftype: Any) -> Any:
    """What ``info`` describes of a pvAccess type: its ``value`` field unless a structure."""
    value = ftype.lookup("value") if ftype is not None else None
    return value if value is not None and value.code != 0x80 else ftype


def _form(form: str) -> int:
    try:
        return FORM_NAMES[form]
    except KeyError:
        raise ValueError(f"form must be one of {sorted(FORM_NAMES)}, not {form!r}") from None


class Context:
    """A set of channels and monitors over CA (and PVA) sharing the process's I/O thread.

    ``env`` replaces ``os.environ`` for the EPICS_* variables; ``timeout`` (seconds) is the
    default for every call that takes one.
    """

    def __init__(self, env: Mapping[str, str] | None = None, *, timeout: float = 5.0):
        self.timeout = checked_timeout(timeout)
        self._loop = shared_loop()
        self._dispatcher = shared_dispatcher()
        self._ca = CAClient(CAConfig.from_env(env), self._loop, self._dispatcher)
        self._env = env
        self._pva_client: PVAClient | None = None  # started by the first pva:// name
        self._pva_lock = threading.Lock()
        self._routes: dict[str, tuple[CAClient, Channel]] = {}
        self._plans: dict[tuple[Any, ...], BlockPlan] = {}  # repeated bulk reads, by names

    # --- routing --------------------------------------------------------------------------------
    @property
    def _pva(self) -> PVAClient:
        if self._pva_client is None:
            with self._pva_lock:
                if self._pva_client is None:
                    self._pva_client = PVAClient(PVAConfig.from_env(self._env), self._loop,
                                                 self._dispatcher)
        return self._pva_client

    def _lookup(self, name: str) -> tuple[CAClient, Channel]:
        scheme, bare = scheme_of(name)
        if scheme == "pva":
            return self._pva, self._pva.channel(bare)  # type: ignore[return-value]
        return self._ca, self._ca.channel(bare)

    def _timeout(self, timeout: Any) -> float | None:
        return self.timeout if timeout is DEFAULT else checked_timeout(timeout)

    # --- starting requests (shared by the sync and async twins) --------------------------------
    def _start_read(self, client: CAClient, channel: Channel, form: int, sink: Callable[[Any], None],
                    as_string: bool, count: int | None) -> _Request:
        request = _Request(client, channel)
        # PVA reads everything a CTRL reading needs in one GET; CA joins a CTRL and a TIME read
        split = form == Form.CTRL and client is self._ca
        if not split and channel.connected:
            try:  # the common case, straight from this thread
                request.ioids.append(client.read_now(channel, form, sink, as_string, count))
                return request
            except DisconnectedError:
                pass  # lost just now: wait for the reconnection like any unconnected channel
        forms: tuple[tuple[int, Callable[[Any], None]], ...] = ((form, sink),)
        if split:
            join = _Join(sink)
            forms = ((Form.CTRL, join.part), (Form.TIME, join.part))

        def issue(ready: Channel, on_io_thread: bool) -> None:
            try:
                frames = []
                for one_form, one_sink in forms:
                    ioid, frame = client.read_frame(ready, one_form, one_sink,
                                                    as_string=as_string, count=count)
                    request.ioids.append(ioid)
                    frames.append(frame)
                client.send(ready, b"".join(frames), on_io_thread)
            except (PVFlowError, ValueError) as exc:
                sink(exc)

        pending = client.when_connected(channel, issue)
        if pending is not None:
            request.actions.append(pending)
        return request

    def _start_connect(self, channels: list[tuple[CAClient, Channel]], batch: Batch) -> _Many:
        many = _Many(len(channels))
        for index, (client, channel) in enumerate(channels):
            request = many.requests[index] = _Request(client, channel)
            pending = client.when_connected(channel, self._io_setter(batch, index, True))
            if pending is not None:
                request.actions.append(pending)
        return many

    def _io_setter(self, batch: Batch, index: int, fixed: Any = None) -> Callable[..., None]:
        """A sink (or on-connect action) filling ``batch[index]`` on the I/O thread, where
        the batch's countdown lives without a lock."""
        in_loop = self._loop.in_loop

        def fill(result: Any, *_: Any) -> None:
            result = fixed if fixed is not None else result
            if in_loop():
                batch.set(index, result)
            else:
                self._loop.call_soon(batch.set, index, result)

        return fill

    def _route(self, name: str) -> tuple[CAClient, Channel]:
        found = self._routes.get(name)
        if found is None:
            found = self._routes[name] = self._lookup(name)
        return found

    def _route_many(self, names: list[str]) -> list[tuple[CAClient, Channel]]:
        missing = {name: scheme_of(name) for name in names if name not in self._routes}
        if missing:
            pva = [name for name, (scheme, _) in missing.items() if scheme == "pva"]
            if pva:
                for name, pva_channel in zip(pva, self._pva.channels(missing[name][1]
                                                                     for name in pva)):
                    self._routes[name] = (self._pva, pva_channel)  # type: ignore[assignment]
            ca = [name for name, (scheme, _) in missing.items() if scheme == "ca"]
            bare = [missing[name][1] for name in ca]
            for name, channel in zip(ca, self._ca.channels(bare)):
                self._routes[name] = (self._ca, channel)
        routes = self._routes
        return [routes[name] for name in names]

    def _start_many(self, names: list[str], form: int, as_string: bool, batch: Batch
                    ) -> _Many:
        """Reads go in blocks per engine and circuit (connected channels now, the others as
        they connect), each block one write: a mixed ca/pva list is split, both halves
        pipelined; CA's CTRL reads are a CTRL and a TIME block joined per slot, its string
        reads go one by one."""
        many = _Many(len(names))
        key = (form, *names)
        plan = self._plans.get(key)
        if plan is not None and plan.valid:
            try:
                many.plans.append((self._ca, plan.send(batch)))
                return many
            except DisconnectedError:
                pass  # lost just now: the general path below waits for the reconnection
        routes = self._route_many(names)
        groups: dict[Any, tuple[list[Channel], list[int]]] = {}
        for index, (client, channel) in enumerate(routes):
            if client is self._ca and as_string:
                many.requests[index] = self._start_read(
                    client, channel, form, self._io_setter(batch, index), as_string, None)
            else:
                group = groups.setdefault(client, ([], []))
                group[0].append(channel)
                group[1].append(index)
        for client, (channels, slots) in groups.items():
            if client is not self._ca:
                many.deferred.append((client, client.read_when_connected(  # type: ignore
                    channels, slots, form, batch, as_string)))
                continue
            if form == Form.CTRL:  # CA sends metadata and timestamp in two reads: join them
                joined = _JoinedSlots(batch)
                for part in (Form.CTRL, Form.TIME):
                    many.deferred.append((client, client.read_when_connected(
                        channels, slots, part, joined)))
                continue
            deferred = client.read_when_connected(channels, slots, form, batch)
            many.deferred.append((client, deferred))
            if deferred.plan is not None and len(groups) == 1:
                if len(self._plans) >= MAX_PLANS:
                    self._plans.pop(next(iter(self._plans)))
                self._plans[key] = deferred.plan
        return many

    @staticmethod
    def _needs_enum_strings(channel: Channel, value: Any) -> bool:
        # (a PVA put operation fetches an enum's choices itself)
        return isinstance(channel, Channel) and channel.native == Native.ENUM and \
            isinstance(value, str) and not channel.enum_strings

    def _start_put(self, client: CAClient, channel: Channel, value: Any,
                   sink: Callable[[Any], None] | None) -> _Request:
        request = _Request(client, channel)
        token = client.put(channel, value, sink)
        if sink is not None:
            request.ioids.append(token)
        return request

    # --- waiting ---------------------------------------------------------------------------------
    def _wait(self, completion: Completion, request: _Request, what: str, timeout: Any) -> Any:
        seconds = self._timeout(timeout)
        if not completion.wait(seconds):
            if request.withdraw() or not completion.wait(seconds):
                raise request.client.timeout_error(request.channel, what, seconds)
        return completion.result()

    async def _wait_async(self, future: asyncio.Future[Any], request: _Request, what: str,
                          timeout: Any) -> Any:
        seconds = self._timeout(timeout)
        try:
            done = await asyncio.wait_for(future, seconds)
        except asyncio.TimeoutError:
            request.withdraw()
            raise request.client.timeout_error(request.channel, what, seconds) from None
        return done.result()

    def _finish_many(self, names: list[str], batch: Batch, many: _Many, what: str,
                     seconds: float | None) -> dict[str, Any]:
        if batch.remaining == 0:
            return dict(zip(names, batch.results))
        results: dict[str, Any] = {}
        missing = [index for index in range(len(names)) if not batch.is_set(index)]
        if missing:
            many.withdraw(missing)
        for index, name in enumerate(names):
            if batch.is_set(index):
                results[name] = batch.results[index]
            else:
                request = many.request(index)
                results[name] = request.client.timeout_error(request.channel, what, seconds)
        return results

    @staticmethod
    def _raise_unconnected(results: dict[str, Any]) -> None:
        failed = [name for name, value in results.items() if isinstance(value, BaseException)]
        if failed:
            first = results[failed[0]]
            more = f" (and {len(failed) - 1} more: {', '.join(failed[1:6])})" if len(failed) > 1 \
                else ""
            raise PVTimeoutError(f"{first}{more}", pv=failed[0])

    # --- public sync API --------------------------------------------------------------------------
    def get(self, name: str, *, form: str = "value", timeout: Any = DEFAULT,
            as_string: bool = False, count: int | None = None) -> Any:
        """The value of ``name`` (``form="value"``) or a :class:`Reading` (``"time"``, ``"ctrl"``).

        Arrays come as numpy arrays, scalars as Python numbers, enums as their index (or their
        string with ``as_string=True``).
        """
        count = checked_count(name, count)
        self._timeout(timeout)
        client, channel = self._route(name)
        completion = Completion()
        request = self._start_read(client, channel, _form(form), completion.set, as_string,
                                   count)
        result = self._wait(completion, request, "get", timeout)
        return result if form == "value" else _named(result, name)

    def get_many(self, names: Iterable[str], *, form: str = "value", timeout: Any = DEFAULT,
                 as_string: bool = False) -> dict[str, Any]:
        """``{name: value}`` for every name, read in one round trip per server.

        A name that fails maps to the exception instance (``PVTimeoutError`` naming it, for
        example) rather than raising, so one dead PV never costs the other readings.
        """
        names = list(dict.fromkeys(names))
        seconds = self._timeout(timeout)
        batch = Batch(len(names))
        many = self._start_many(names, _form(form), as_string, batch)
        batch.wait(seconds)
        results = self._finish_many(names, batch, many, "get", seconds)
        return results if form == "value" else _named_all(results)

    def put(self, name: str, value: Any, *, wait: bool = True, timeout: Any = DEFAULT,
            callback: Callable[[BaseException | None], None] | None = None) -> None:
        """Write ``value``. ``wait=True`` returns when the server's put-callback completes.

        With ``callback`` the call returns at once and ``callback(None)`` (or
        ``callback(error)``) runs on a callback worker when the server confirms.
        """
        self._timeout(timeout)
        client, channel = self._route(name)
        if not channel.connected:
            self.connect([name], timeout=timeout)
        if self._needs_enum_strings(channel, value):
            channel.enum_strings = self.get(name, form="ctrl", timeout=timeout).enum_strings
        if callback is not None:
            self._start_put(client, channel, value,
                            lambda result: call_in_worker(self._dispatcher, callback, result))
            return
        if not wait:
            self._start_put(client, channel, value, None)
            return
        completion = Completion()
        request = self._start_put(client, channel, value, completion.set)
        self._wait(completion, request, "put", timeout)

    def connect(self, names: Iterable[str], *, timeout: Any = DEFAULT) -> None:
        """Wait until every name is connected; ``PVTimeoutError`` lists those that are not."""
        names = list(dict.fromkeys(names))
        seconds = self._timeout(timeout)
        channels = self._route_many(names)
        batch = Batch(len(channels))
        requests = self._start_connect(channels, batch)
        if not batch.wait(seconds):
            self._raise_unconnected(self._finish_many(names, batch, requests, "connect",
                                                      seconds))

    def subscribe(self, name: str, callback: Callable[[Any], None], *, form: str = "time",
                  mask: int = DEFAULT_MASK,
                  connection_callback: Callable[[bool], None] | None = None,
                  queue_size: int = 10_000,
                  loop: asyncio.AbstractEventLoop | None = None,
                  server_queue_size: int = 100, request: str | None = None,
                  as_string: bool = False) -> Subscription:
        """Call ``callback`` with every update of ``name``, in order, off the I/O thread.

        ``form="time"`` gives :class:`Reading` objects, ``"value"`` bare values. Connection
        changes reach ``connection_callback`` in order with the values. With ``loop``, the
        callbacks run on that asyncio loop's thread instead of pvflow's callback workers.
        pvAccess only: ``server_queue_size`` is the monitor's ``queueSize`` (updates the
        server keeps while we have not acknowledged; the window we grant is ``queue_size``,
        what our side holds without loss) and ``request`` a pvRequest such as
        ``"field(value)record[DBE=VALUE]"`` replacing the one ``form`` implies.
        ``as_string=True`` delivers enums as their choice and char arrays as text, as ``get``.
        """
        client, channel = self._route(name)
        schedule = asyncio_schedule(loop) if loop is not None else self._dispatcher.schedule
        if form != "value":
            user_callback = callback

            def callback(reading: Any) -> None:
                user_callback(_named(reading, name))
        mailbox = Mailbox(name, callback, connection_callback, schedule, queue_size)
        inner = client.subscribe(channel, _form(form), mask, mailbox, server_queue_size, request,
                                 as_string)
        return Subscription(client, inner, mailbox)

    def watch(self, name: str, connection_callback: Callable[[bool], None], *,
              access_callback: Callable[[bool, bool], None] | None = None,
              loop: asyncio.AbstractEventLoop | None = None) -> Watch:
        """Call ``connection_callback(connected)`` and ``access_callback(read, write)`` on
        every change, in order, starting with the current state; the channel starts
        connecting now (this is how ophyd's PV objects learn about their channel)."""
        client, channel = self._route(name)
        schedule = asyncio_schedule(loop) if loop is not None else self._dispatcher.schedule
        mailbox = Mailbox(name, lambda item: None, connection_callback, schedule, 1000,
                          access_callback)
        client.watch(channel, mailbox)
        return Watch(client, channel, mailbox)

    def info(self, name: str, *, timeout: Any = DEFAULT) -> ChannelInfo:
        """Where ``name`` lives and what it holds (what ``pvflow info`` shows)."""
        client, channel = self._route(name)
        if not channel.connected:  # connected: answered from what the server said at connect
            self.connect([name], timeout=timeout)
        if client is self._ca:
            return self._ca_info(name, channel)
        completion = Completion()
        client.introspect(channel, completion.set)  # type: ignore[attr-defined]
        shown = _shown_type(self._wait(completion, _Request(client, channel), "introspection",
                                       timeout))
        count = len(self.get(name, timeout=timeout)) if shown is not None and shown.is_array \
            else 1
        return self._pva_info(name, channel, shown, count)

    @staticmethod
    def _ca_info(name: str, channel: Channel) -> ChannelInfo:
        return ChannelInfo(name, channel.address(), channel.native.name, channel.count,
                           bool(channel.access & AccessRights.READ),
                           bool(channel.access & AccessRights.WRITE), channel.state.value)

    @staticmethod
    def _pva_info(name: str, channel: Channel, shown: Any, count: int) -> ChannelInfo:
        return ChannelInfo(name, channel.address(),
                           shown.describe() if shown is not None else "none", count,
                           True, True, channel.state.value)

    def release(self, names: Iterable[str]) -> None:
        """Disconnect from ``names`` and forget them; monitors and watches on them end.

        The next use of a released name searches for it afresh. Long-running programs that
        touch ever-changing PVs use this to keep their channel count bounded.
        """
        by_engine: dict[CAClient, list[Channel]] = {}
        for name in names:
            client, channel = self._routes.pop(name) if name in self._routes else \
                self._lookup(name)
            by_engine.setdefault(client, []).append(channel)
        for client, channels in by_engine.items():
            client.release(channels)

    def rpc(self, name: str, argument: Any = None, *, timeout: Any = DEFAULT) -> Any:
        """pvAccess RPC: send ``argument`` (a dict becomes a structure) to ``pva://NAME``
        and return the server's answer (a dict for a structure)."""
        client, channel = self._route(name)
        if client is self._ca:
            raise ValueError(f"{name}: RPC needs a pva:// name")
        completion = Completion()
        client.rpc(channel, argument, completion.set)  # type: ignore[attr-defined]
        return self._wait(completion, _Request(client, channel), "rpc", timeout)

    async def rpc_async(self, name: str, argument: Any = None, *,
                        timeout: Any = DEFAULT) -> Any:
        client, channel = self._route(name)
        if client is self._ca:
            raise ValueError(f"{name}: RPC needs a pva:// name")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        completion = Completion(asyncio_waiter(loop, future))
        client.rpc(channel, argument, completion.set)  # type: ignore[attr-defined]
        return await self._wait_async(future, _Request(client, channel), "rpc", timeout)

    # --- public async twins -------------------------------------------------------------------------
    async def info_async(self, name: str, *, timeout: Any = DEFAULT) -> ChannelInfo:
        client, channel = self._route(name)
        if not channel.connected:
            await self.connect_async([name], timeout=timeout)
        if client is self._ca:
            return self._ca_info(name, channel)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        client.introspect(channel, Completion(asyncio_waiter(loop, future)).set)  # type: ignore
        shown = _shown_type(await self._wait_async(future, _Request(client, channel),
                                                   "introspection", timeout))
        count = len(await self.get_async(name, timeout=timeout)) \
            if shown is not None and shown.is_array else 1
        return self._pva_info(name, channel, shown, count)

    async def get_async(self, name: str, *, form: str = "value", timeout: Any = DEFAULT,
                        as_string: bool = False, count: int | None = None) -> Any:
        count = checked_count(name, count)
        self._timeout(timeout)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        client, channel = self._route(name)
        completion = Completion(asyncio_waiter(loop, future))
        request = self._start_read(client, channel, _form(form), completion.set, as_string,
                                   count)
        result = await self._wait_async(future, request, "get", timeout)
        return result if form == "value" else _named(result, name)

    async def get_many_async(self, names: Iterable[str], *, form: str = "value",
                             timeout: Any = DEFAULT, as_string: bool = False) -> dict[str, Any]:
        names = list(dict.fromkeys(names))
        seconds = self._timeout(timeout)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        batch = Batch(len(names), asyncio_waiter(loop, future))
        many = self._start_many(names, _form(form), as_string, batch)
        try:
            await asyncio.wait_for(asyncio.shield(future), seconds)
        except asyncio.TimeoutError:
            pass
        results = self._finish_many(names, batch, many, "get", seconds)
        return results if form == "value" else _named_all(results)

    async def put_async(self, name: str, value: Any, *, wait: bool = True,
                        timeout: Any = DEFAULT) -> None:
        self._timeout(timeout)
        client, channel = self._route(name)
        if not channel.connected:
            await self.connect_async([name], timeout=timeout)
        if self._needs_enum_strings(channel, value):
            reading = await self.get_async(name, form="ctrl", timeout=timeout)
            channel.enum_strings = reading.enum_strings
        if not wait:
            self._start_put(client, channel, value, None)
            return
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        completion = Completion(asyncio_waiter(loop, future))
        request = self._start_put(client, channel, value, completion.set)
        await self._wait_async(future, request, "put", timeout)

    async def connect_async(self, names: Iterable[str], *, timeout: Any = DEFAULT) -> None:
        names = list(dict.fromkeys(names))
        seconds = self._timeout(timeout)
        channels = self._route_many(names)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        batch = Batch(len(channels), asyncio_waiter(loop, future))
        requests = self._start_connect(channels, batch)
        try:
            await asyncio.wait_for(asyncio.shield(future), seconds)
        except asyncio.TimeoutError:
            self._raise_unconnected(self._finish_many(names, batch, requests, "connect",
                                                      seconds))

    # --- lifetime ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close every circuit and monitor of this Context (the I/O thread stays for others)."""
        self._ca.close()
        if self._pva_client is not None:
            self._pva_client.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, int]:
        stats = self._ca.stats()
        if self._pva_client is not None:
            stats.update({f"pva_{key}": value for key, value in self._pva_client.stats().items()})
        return stats


__all__ = ["DEFAULT", "ChannelInfo", "Context", "Reading", "Subscription", "Watch"]
