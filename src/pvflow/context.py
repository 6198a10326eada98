"""`Context`: pvflow's one public client surface (client API layer; integrations build on it).

Names route by prefix: ``ca://NAME`` and bare ``NAME`` go to Channel Access, ``pva://NAME``
to pvAccess, each to its engine (:data:`ENGINES`; the contract every engine keeps is in
:mod:`pvflow.io.contract`). Every call that waits (``get``, ``get_many``, ``put``,
``connect``, ``info``, ``rpc``) has an ``*_async`` twin with the same signature, errors and
results: both start the same request through the engine and differ only in how they wait
(a lock for threads, a future resolved on the caller's loop for asyncio), so the two can
never drift apart. ``subscribe``, ``watch`` and ``release`` return at once and need none.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Union

from .arguments import checked_count, checked_timeout, scheme_of
from .ca.client import CAClient
from .ca.protocol import Monitor
from .errors import DisconnectedError, PVTimeoutError
from .io.completion import Batch, Completion, asyncio_waiter
from .io.contract import (FORMS, BulkRequest, ChannelInfo, Engine, EngineFactory, Form, ReadPlan,
                          Request, RemoteCalls)
from .io.delivery import Mailbox, asyncio_schedule, call_in_worker, shared_dispatcher
from .io.loop import shared_loop
from .pva.client import PVAClient
from .reading import Reading

ENGINES: Mapping[str, EngineFactory] = {
    "ca": CAClient.from_env,
    "pva": PVAClient.from_env,
}
"""The engine of each scheme (a bare name is ``ca``); an engine starts with its first name."""
BARE_SCHEME = "ca"


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Final = _Default()
"""Timeout sentinel: "use the Context's timeout"; ``None`` means wait forever."""
Timeout = Union[float, None, _Default]
"""Seconds to wait, ``None`` for ever, or :data:`DEFAULT`."""

DEFAULT_MASK = Monitor.VALUE | Monitor.ALARM
MAX_PLANS = 64  # name lists whose bulk-read plan is kept
Route = tuple[Engine[Any], Any]  # the engine of a name and its channel there


class Subscription:
    """A running monitor; ``close()`` stops it. Counters say what happened to its updates."""

    def __init__(self, engine: Engine[Any], inner: object, mailbox: Mailbox):
        self._engine = engine
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
        self._engine.unsubscribe(self._inner)

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

    def __init__(self, engine: Engine[Any], channel: Any, mailbox: Mailbox):
        self._engine = engine
        self._channel = channel
        self._mailbox = mailbox

    def close(self) -> None:
        self._engine.unwatch(self._channel, self._mailbox)

    def __repr__(self) -> str:
        state = "closed" if self._mailbox.closed else self._channel.state.value
        return f"<Watch {self._mailbox.name!r} {state}>"


class _Connects:
    """The connection waits of one ``connect`` call, by slot."""

    __slots__ = ("requests",)
    plan = None

    def __init__(self, requests: list[Request]):
        self.requests = requests

    def withdraw(self, slots: list[int]) -> None:
        for slot in slots:
            self.requests[slot].withdraw()


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


def _form(form: str) -> Form:
    try:
        return FORMS[form]
    except KeyError:
        raise ValueError(f"form must be one of {sorted(FORMS)}, not {form!r}") from None


class Context:
    """A set of channels and monitors over CA (and PVA) sharing the process's I/O thread.

    ``env`` replaces ``os.environ`` for the EPICS_* variables; ``timeout`` (seconds) is the
    default for every call that takes one. ``engines`` adds (or replaces) the engine of a
    scheme, as :data:`ENGINES` lists them.
    """

    def __init__(self, env: Mapping[str, str] | None = None, *, timeout: float | None = 5.0,
                 engines: Mapping[str, EngineFactory] | None = None):
        self.timeout = checked_timeout(timeout)
        self._loop = shared_loop()
        self._dispatcher = shared_dispatcher()
        self._env = env
        self._factories = {**ENGINES, **(engines or {})}
        self._engines: dict[str, Engine[Any]] = {}
        self._engines_lock = threading.Lock()
        # Names on the engine of bare names map to their channel alone: at 100 000 names a
        # route tuple per name doubles what every full garbage collection walks. Others
        # (pva://...) keep their (engine, channel) route.
        self._bare_routes: dict[str, Any] = {}
        self._routes: dict[str, Route] = {}
        self._plans: dict[tuple[Any, ...], ReadPlan] = {}  # repeated bulk reads, by names
        # started now: a bad EPICS_CA_* setting fails here
        self._bare: Engine[Any] = self._engine(BARE_SCHEME)

    # --- routing --------------------------------------------------------------------------------
    def _engine(self, scheme: str) -> Engine[Any]:
        engine = self._engines.get(scheme)
        if engine is None:
            with self._engines_lock:
                engine = self._engines.get(scheme)
                if engine is None:
                    engine = self._engines[scheme] = self._factories[scheme](
                        self._env, self._loop, self._dispatcher)
        return engine

    def _lookup(self, name: str) -> Route:
        scheme, bare = scheme_of(name, self._factories)
        engine = self._engine(scheme)
        return engine, engine.channel(bare)

    def _route(self, name: str) -> Route:
        channel = self._bare_routes.get(name)
        if channel is not None:
            return self._bare, channel
        found = self._routes.get(name)
        if found is None:
            found = self._lookup(name)
            self._remember([name], found[0], [found[1]])
        return found

    def _remember(self, names: list[str], engine: Engine[Any], channels: list[Any]) -> None:
        if engine is self._bare:
            self._bare_routes.update(zip(names, channels))
        else:
            self._routes.update(zip(names, zip(itertools.repeat(engine), channels)))

    def _route_many(self, names: list[str]) -> list[Route]:
        """The routes of ``names``, in their order."""
        self._make_missing(names)
        bare_routes, routes, bare = self._bare_routes, self._routes, self._bare
        return [(bare, bare_routes[name]) if name in bare_routes else routes[name]
                for name in names]

    def _grouped(self, names: list[str]) -> dict[Engine[Any], tuple[list[Any], list[int]]]:
        """The channels of ``names`` (made where missing) by engine, each with its index in
        ``names``: ``{engine: (channels, indexes)}``, without an object per name."""
        self._make_missing(names)
        bare_routes, routes, bare = self._bare_routes, self._routes, self._bare
        if not routes:  # every name on the engine of bare names: the common case
            return {bare: ([bare_routes[name] for name in names], list(range(len(names))))}
        groups: dict[Engine[Any], tuple[list[Any], list[int]]] = {}
        for index, name in enumerate(names):
            channel = bare_routes.get(name)
            engine, channel = (bare, channel) if channel is not None else routes[name]
            group = groups.get(engine)
            if group is None:
                group = groups[engine] = ([], [])
            group[0].append(channel)
            group[1].append(index)
        return groups

    def _make_missing(self, names: list[str]) -> None:
        """Route the names not routed yet, their channels made a block per engine."""
        bare_routes, routes = self._bare_routes, self._routes
        missing = [name for name in names if name not in bare_routes and name not in routes]
        if not missing:
            return
        if "://" not in "\0".join(missing):  # all bare, the common case: no pass per name
            self._remember(missing, self._bare, self._bare.channels(missing))
            return
        by_scheme: dict[str, tuple[list[str], list[str]]] = {}  # scheme: names, bare names
        factories = self._factories
        for name in missing:
            scheme, bare_name = scheme_of(name, factories) if "://" in name else \
                (BARE_SCHEME, name)
            found = by_scheme.get(scheme)
            if found is None:
                found = by_scheme[scheme] = ([], [])
            found[0].append(name)
            found[1].append(bare_name)
        for scheme, (scheme_names, bare_names) in by_scheme.items():
            engine = self._engine(scheme)
            self._remember(scheme_names, engine, engine.channels(bare_names))

    def _seconds(self, timeout: Timeout) -> float | None:
        return self.timeout if timeout is DEFAULT else checked_timeout(timeout)

    # --- starting requests (shared by the sync and async twins) --------------------------------
    def _start_many(self, names: list[str], form: Form, as_string: bool, batch: Batch
                    ) -> list[BulkRequest]:
        """Reads go in blocks per engine (each pipelines its own): the connected channels
        now, the others as they connect. A list read again reuses its engine's plan."""
        key = (form, *names)
        plan = self._plans.get(key)
        if plan is not None and plan.valid:
            try:
                return [plan.send(batch)]
            except DisconnectedError:
                pass  # lost just now: the general path below waits for the reconnection
        bulks = [engine.read_many(channels, slots, form, as_string, batch)
                 for engine, (channels, slots) in self._grouped(names).items()]
        if len(bulks) == 1:
            plan = bulks[0].plan
            if plan is not None:
                if len(self._plans) >= MAX_PLANS:
                    self._plans.pop(next(iter(self._plans)))
                self._plans[key] = plan
        return bulks

    def _start_connect(self, routes: list[Route], batch: Batch) -> list[BulkRequest]:
        return [_Connects([engine.start_connect(channel, batch, index)
                           for index, (engine, channel) in enumerate(routes)])]

    # --- waiting ---------------------------------------------------------------------------------
    @staticmethod
    def _wait(completion: Completion, request: Request, engine: Engine[Any], channel: Any,
              what: str, seconds: float | None) -> Any:
        if not request.wait(completion, seconds):
            if request.withdraw() or not completion.wait(seconds):
                raise engine.timeout_error(channel, what, seconds)
        return completion.result()

    @staticmethod
    async def _wait_async(future: asyncio.Future[Any], request: Request, engine: Engine[Any],
                          channel: Any, what: str, seconds: float | None) -> Any:
        try:
            done = await asyncio.wait_for(future, seconds)
        except asyncio.TimeoutError:
            request.withdraw()
            raise engine.timeout_error(channel, what, seconds) from None
        return done.result()

    def _finish_many(self, names: list[str], batch: Batch, bulks: list[BulkRequest], what: str,
                     seconds: float | None) -> dict[str, Any]:
        if batch.remaining == 0:
            return dict(zip(names, batch.results))
        missing = [index for index in range(len(names)) if not batch.is_set(index)]
        for bulk in bulks:
            bulk.withdraw(missing)
        routes = self._route_many(names)
        results: dict[str, Any] = {}
        for index, name in enumerate(names):
            if batch.is_set(index):
                results[name] = batch.results[index]
            else:
                engine, channel = routes[index]
                results[name] = engine.timeout_error(channel, what, seconds)
        return results

    @staticmethod
    def _raise_unconnected(results: dict[str, Any]) -> None:
        failed = [name for name, value in results.items() if isinstance(value, BaseException)]
        if failed:
            first = results[failed[0]]
            more = f" (and {len(failed) - 1} more: {', '.join(failed[1:6])})" if len(failed) > 1 \
                else ""
            raise PVTimeoutError(f"{first}{more}", pv=failed[0])

    def _remote_calls(self, name: str) -> tuple[RemoteCalls[Any], Engine[Any], Any]:
        engine, channel = self._route(name)
        calls = engine.remote_calls
        if calls is None:
            raise ValueError(f"{name}: RPC needs a pva:// name (its protocol has no RPC)")
        return calls, engine, channel

    # --- public sync API --------------------------------------------------------------------------
    def get(self, name: str, *, form: str = "value", timeout: Timeout = DEFAULT,
            as_string: bool = False, count: int | None = None) -> Any:
        """The value of ``name`` (``form="value"``) or a :class:`Reading` (``"time"``, ``"ctrl"``).

        Arrays come as numpy arrays, scalars as Python numbers, enums as their index (or their
        string with ``as_string=True``).
        """
        count = checked_count(name, count)
        seconds = self._seconds(timeout)
        engine, channel = self._route(name)
        completion = Completion()
        request = engine.start_read(channel, _form(form), completion.set, as_string, count,
                                    waited=True)
        result = self._wait(completion, request, engine, channel, "get", seconds)
        return result if form == "value" else _named(result, name)

    def get_many(self, names: Iterable[str], *, form: str = "value", timeout: Timeout = DEFAULT,
                 as_string: bool = False) -> dict[str, Any]:
        """``{name: value}`` for every name, read in one round trip per server.

        A name that fails maps to the exception instance (``PVTimeoutError`` naming it, for
        example) rather than raising, so one dead PV never costs the other readings.
        """
        names = list(dict.fromkeys(names))
        seconds = self._seconds(timeout)
        batch = Batch(len(names))
        bulks = self._start_many(names, _form(form), as_string, batch)
        batch.wait(seconds)
        results = self._finish_many(names, batch, bulks, "get", seconds)
        return results if form == "value" else _named_all(results)

    def put(self, name: str, value: Any, *, wait: bool = True, timeout: Timeout = DEFAULT,
            callback: Callable[[BaseException | None], None] | None = None) -> None:
        """Write ``value``. ``wait=True`` returns when the server's put-callback completes.

        With ``callback`` the call returns at once and ``callback(None)`` (or
        ``callback(error)``) runs on a callback worker when the server confirms.
        """
        seconds = self._seconds(timeout)
        engine, channel = self._route(name)
        if not channel.connected:
            self.connect([name], timeout=timeout)
        if callback is not None:
            engine.put(channel, value, self._in_worker(callback))
            return
        if not wait:
            engine.put(channel, value, None)
            return
        completion = Completion()
        request = engine.put(channel, value, completion.set)
        self._wait(completion, request, engine, channel, "put", seconds)

    def _in_worker(self, callback: Callable[[BaseException | None], None]
                   ) -> Callable[[Any], None]:
        dispatcher = self._dispatcher
        dispatcher.start()
        return lambda result: call_in_worker(dispatcher, callback, result)

    def _schedule(self, loop: asyncio.AbstractEventLoop | None) -> Callable[[Mailbox], None]:
        """Where a new mailbox's callbacks run: ``loop``'s thread, or the callback workers
        (started here, on the caller's thread, if they are not running yet)."""
        if loop is not None:
            return asyncio_schedule(loop)
        self._dispatcher.start()
        return self._dispatcher.schedule

    def connect(self, names: Iterable[str], *, timeout: Timeout = DEFAULT) -> None:
        """Wait until every name is connected; ``PVTimeoutError`` lists those that are not."""
        names = list(dict.fromkeys(names))
        seconds = self._seconds(timeout)
        routes = self._route_many(names)
        batch = Batch(len(routes))
        requests = self._start_connect(routes, batch)
        if not batch.wait(seconds):
            self._raise_unconnected(self._finish_many(names, batch, requests, "connect",
                                                      seconds))

    def subscribe(self, name: str, callback: Callable[[Any], None], *, form: str = "time",
                  mask: int = DEFAULT_MASK,
                  connection_callback: Callable[[bool], None] | None = None,
                  queue_size: int = 10_000,
                  loop: asyncio.AbstractEventLoop | None = None,
                  server_queue_size: int = 100, request: str | None = None,
                  as_string: bool = False, dtype: str | None = None) -> Subscription:
        """Call ``callback`` with every update of ``name``, in order, off the I/O thread.

        ``form="time"`` gives :class:`Reading` objects, ``"value"`` bare values. Connection
        changes reach ``connection_callback`` in order with the values. With ``loop``, the
        callbacks run on that asyncio loop's thread instead of pvflow's callback workers.
        pvAccess only: ``server_queue_size`` is the monitor's ``queueSize`` (updates the
        server keeps while we have not acknowledged; the window we grant is ``queue_size``,
        what our side holds without loss) and ``request`` a pvRequest such as
        ``"field(value)record[DBE=VALUE]"`` replacing the one ``form`` implies.
        ``as_string=True`` delivers enums as their choice and char arrays as text, as ``get``.
        CA only: ``dtype`` (``"uint16"``, ``"uint32"``) says the field is unsigned (a
        waveform's FTVL tells): CA has no unsigned types, so a server sends an unsigned short
        array as LONG, twice its bytes; the monitor then asks for SHORT (LONG) and delivers
        the bits as ``uint16`` (``uint32``). A monitor the server refuses reaches ``callback``
        as the :class:`PVFlowError` naming the PV and the server's reason, in place of a value.
        """
        engine, channel = self._route(name)
        schedule = self._schedule(loop)
        if form != "value":
            user_callback = callback

            def callback(reading: Any) -> None:
                user_callback(_named(reading, name))
        mailbox = Mailbox(name, callback, connection_callback, schedule, queue_size)
        inner = engine.subscribe(channel, _form(form), mask, mailbox, server_queue_size, request,
                                 as_string, dtype)
        return Subscription(engine, inner, mailbox)

    def watch(self, name: str, connection_callback: Callable[[bool], None], *,
              access_callback: Callable[[bool, bool], None] | None = None,
              loop: asyncio.AbstractEventLoop | None = None) -> Watch:
        """Call ``connection_callback(connected)`` and ``access_callback(read, write)`` on
        every change, in order, starting with the current state; the channel starts
        connecting now (this is how ophyd's PV objects learn about their channel)."""
        engine, channel = self._route(name)
        schedule = self._schedule(loop)
        mailbox = Mailbox(name, lambda item: None, connection_callback, schedule, 1000,
                          access_callback)
        engine.watch(channel, mailbox)
        return Watch(engine, channel, mailbox)

    def info(self, name: str, *, timeout: Timeout = DEFAULT) -> ChannelInfo:
        """Where ``name`` lives and what it holds (what ``pvflow info`` shows)."""
        seconds = self._seconds(timeout)
        engine, channel = self._route(name)
        if not channel.connected:
            self.connect([name], timeout=timeout)
        completion = Completion()
        request = engine.info(channel, completion.set)
        found: ChannelInfo = self._wait(completion, request, engine, channel, "info", seconds)
        return found if found.name == name else dataclasses.replace(found, name=name)

    def release(self, names: Iterable[str]) -> None:
        """Disconnect from ``names`` and forget them; monitors and watches on them end.

        The next use of a released name searches for it afresh. Long-running programs that
        touch ever-changing PVs use this to keep their channel count bounded.
        """
        by_engine: dict[Engine[Any], list[Any]] = {}
        for name in names:
            engine, channel = self._route(name)
            self._bare_routes.pop(name, None)
            self._routes.pop(name, None)
            by_engine.setdefault(engine, []).append(channel)
        for engine, channels in by_engine.items():
            engine.release(channels)

    def rpc(self, name: str, argument: Any = None, *, timeout: Timeout = DEFAULT) -> Any:
        """pvAccess RPC: send ``argument`` (a dict becomes a structure) to ``pva://NAME``
        and return the server's answer (a dict for a structure)."""
        seconds = self._seconds(timeout)
        calls, engine, channel = self._remote_calls(name)
        completion = Completion()
        request = calls.rpc(channel, argument, completion.set)
        return self._wait(completion, request, engine, channel, "rpc", seconds)

    # --- public async twins -------------------------------------------------------------------------
    async def get_async(self, name: str, *, form: str = "value", timeout: Timeout = DEFAULT,
                        as_string: bool = False, count: int | None = None) -> Any:
        count = checked_count(name, count)
        seconds = self._seconds(timeout)
        future = asyncio.get_running_loop().create_future()
        engine, channel = self._route(name)
        completion = Completion(asyncio_waiter(future.get_loop(), future))
        request = engine.start_read(channel, _form(form), completion.set, as_string, count)
        result = await self._wait_async(future, request, engine, channel, "get", seconds)
        return result if form == "value" else _named(result, name)

    async def get_many_async(self, names: Iterable[str], *, form: str = "value",
                             timeout: Timeout = DEFAULT, as_string: bool = False
                             ) -> dict[str, Any]:
        names = list(dict.fromkeys(names))
        seconds = self._seconds(timeout)
        future = asyncio.get_running_loop().create_future()
        batch = Batch(len(names), asyncio_waiter(future.get_loop(), future))
        bulks = self._start_many(names, _form(form), as_string, batch)
        try:
            await asyncio.wait_for(asyncio.shield(future), seconds)
        except asyncio.TimeoutError:
            pass
        results = self._finish_many(names, batch, bulks, "get", seconds)
        return results if form == "value" else _named_all(results)

    async def put_async(self, name: str, value: Any, *, wait: bool = True,
                        timeout: Timeout = DEFAULT,
                        callback: Callable[[BaseException | None], None] | None = None
                        ) -> None:
        seconds = self._seconds(timeout)
        engine, channel = self._route(name)
        if not channel.connected:
            await self.connect_async([name], timeout=timeout)
        if callback is not None:
            engine.put(channel, value, self._in_worker(callback))
            return
        if not wait:
            engine.put(channel, value, None)
            return
        future = asyncio.get_running_loop().create_future()
        completion = Completion(asyncio_waiter(future.get_loop(), future))
        request = engine.put(channel, value, completion.set)
        await self._wait_async(future, request, engine, channel, "put", seconds)

    async def connect_async(self, names: Iterable[str], *, timeout: Timeout = DEFAULT) -> None:
        names = list(dict.fromkeys(names))
        seconds = self._seconds(timeout)
        routes = self._route_many(names)
        future = asyncio.get_running_loop().create_future()
        batch = Batch(len(routes), asyncio_waiter(future.get_loop(), future))
        requests = self._start_connect(routes, batch)
        try:
            await asyncio.wait_for(asyncio.shield(future), seconds)
        except asyncio.TimeoutError:
            self._raise_unconnected(self._finish_many(names, batch, requests, "connect",
                                                      seconds))

    async def info_async(self, name: str, *, timeout: Timeout = DEFAULT) -> ChannelInfo:
        seconds = self._seconds(timeout)
        engine, channel = self._route(name)
        if not channel.connected:
            await self.connect_async([name], timeout=timeout)
        future = asyncio.get_running_loop().create_future()
        completion = Completion(asyncio_waiter(future.get_loop(), future))
        request = engine.info(channel, completion.set)
        found: ChannelInfo = await self._wait_async(future, request, engine, channel, "info",
                                                    seconds)
        return dataclasses.replace(found, name=name)

    async def rpc_async(self, name: str, argument: Any = None, *,
                        timeout: Timeout = DEFAULT) -> Any:
        seconds = self._seconds(timeout)
        calls, engine, channel = self._remote_calls(name)
        future = asyncio.get_running_loop().create_future()
        completion = Completion(asyncio_waiter(future.get_loop(), future))
        request = calls.rpc(channel, argument, completion.set)
        return await self._wait_async(future, request, engine, channel, "rpc", seconds)

    # --- lifetime ------------------------------------------------------------------------------------
    def close(self) -> None:
        """Close every circuit and monitor of this Context (the I/O thread stays for others)."""
        for engine in list(self._engines.values()):
            engine.close()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, int]:
        """The engines' counts; those of engines other than CA's are prefixed by scheme."""
        stats: dict[str, int] = {}
        for scheme, engine in list(self._engines.items()):
            prefix = "" if scheme == BARE_SCHEME else f"{scheme}_"
            stats.update({f"{prefix}{key}": value for key, value in engine.stats().items()})
        return stats


__all__ = ["DEFAULT", "ENGINES", "ChannelInfo", "Context", "Reading", "Subscription", "Timeout",
           "Watch"]
