"""The engine skeleton both protocols share (transport layer): a channel's life from search
to connection, loss, failure and release; circuits opened on search answers, name servers
kept open, requests sent from any thread, silent circuits probed with echoes and closed,
shut-down and counts. The protocol supplies what goes on its wire (the hooks that raise
``NotImplementedError``) and sets ``_search`` once its search socket exists.
"""

from __future__ import annotations

import getpass
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import (DisconnectedError, PVFlowError, PVTimeoutError, RemoteProtocolError,
                      naming_pv, no_answer)
from .channel_failure import ChannelFailure
from .channels import (CLOSED, CONNECTED, CONNECTING, FAILED, NO_ACTIONS, SEARCHING, Action,
                       ChannelT, ChannelTable, add_action)
from .completion import Completion
from .connection import Connection
from .contract import RemoteCalls, Sink, Slots
from .deferred_reads import DeferredBlockReads
from .delivery import ConnectionChange
from .loop import READ, IOLoop
from .name_search import NameSearchBase
from .requests import PendingRequest, ReadHere

ECHO_TIMEOUT = 5.0  # seconds an echo may go unanswered before its circuit is declared dead
NAME_SERVER_RETRY = 1.0  # seconds before a lost name server is dialled again


class EngineBase(ChannelTable[ChannelT]):
    """A protocol engine's shared half. ``log`` and ``shown_prefix`` (how errors name a
    channel) are the protocol's."""

    log = logging.getLogger("pvflow.io")
    shown_prefix = ""

    def __init__(self, loop: IOLoop, factory: Callable[[str, int], ChannelT], id_limit: int,
                 echo_after: float, search_targets: Iterable[tuple[str, int]],
                 name_servers: Iterable[tuple[str, int]]):
        super().__init__(loop, factory, self._begin_search, id_limit)
        self._connections: dict[tuple[str, int], Any] = {}
        self._name_server_connections: list[Any] = []
        self._search: NameSearchBase[ChannelT] | None = None
        self._echo_after = echo_after  # seconds of silence before an echo probes a circuit
        self._search_targets = list(search_targets)
        self._name_servers = list(name_servers)
        self.topology = 0  # bumped whenever any channel connects, disconnects or is released
        self.user_name = user_name()

    def _start_on_io_thread(self) -> None:
        """Open the search socket and the name servers on the I/O thread. Not waited for:
        the loop runs its calls in order, so the searches the caller starts next find the
        socket open, and a fresh process saves a hand-over to the I/O thread and back."""
        self.loop.call_soon(self._run_start)

    def _run_start(self) -> None:
        search = self._search = self._open_search()
        self.loop.register(search.socket, READ, search.on_readable)
        for address in self._name_servers:
            self._open_name_server(address)
        self._schedule_liveness()

    # --- the protocol's part ----------------------------------------------------------------------
    def _open_search(self) -> NameSearchBase[ChannelT]:
        """I/O thread: the protocol's search socket."""
        raise NotImplementedError

    def _new_connection(self, host: str, port: int) -> Any:
        """A connection (circuit plus socket) to a server; ``OSError`` if it cannot open."""
        raise NotImplementedError

    def _name_server_opened(self, connection: Any) -> None:
        """I/O thread: a name server's circuit is (re)opened."""

    def _send_echo(self, connection: Any) -> None:
        raise NotImplementedError

    def _restart_subscriptions(self, channel: ChannelT) -> None:
        """I/O thread: ``channel`` (re)connected: start its monitors on its circuit."""
        raise NotImplementedError

    def _circuit_gone(self, channel: ChannelT) -> None:
        """I/O thread, engine lock held: ``channel`` lost its circuit; drop what it held."""

    def _clear_on_circuit(self, channel: ChannelT, circuit: Any, connected: bool) -> None:
        """I/O thread: ``channel`` is released: tell its server, drop what its circuit holds."""
        raise NotImplementedError

    def cancel(self, channel: ChannelT, request_id: int) -> bool:
        """Forget a request; False when the I/O thread already took it (its answer is coming)."""
        raise NotImplementedError

    @property
    def remote_calls(self) -> RemoteCalls[ChannelT] | None:
        """Neither RPC nor introspection, unless the protocol has them."""
        return None

    def start_read(self, channel: ChannelT, form: Any, sink: Sink, as_string: bool,
                   count: int | None, waited: bool = False) -> PendingRequest:
        """Read once: now from the caller's thread when connected, else when it connects; a
        read ``waited`` for on a connected channel is sent by its wait (:meth:`read_here`)."""
        if waited and channel.state is CONNECTED and self.loop.shares_events and \
                self._reads_here(form):
            return ReadHere(self, channel, form, sink, as_string, count)
        return self._issue_read(PendingRequest(self, channel), channel, form, sink, as_string,
                                count)

    def _reads_here(self, form: Any) -> bool:
        """Whether a caller may read this form's answer itself (one answer per read)."""
        return True

    def _send_here(self, request: ReadHere) -> tuple[int, int]:
        """Send ``request`` from the caller's thread (``DisconnectedError`` if its circuit is
        gone): its request id, and the id its answer carries (``take_reply``'s)."""
        raise NotImplementedError

    def _issue_read(self, request: PendingRequest, channel: ChannelT, form: Any, sink: Sink,
                    as_string: bool, count: int | None) -> PendingRequest:
        """Read ``channel`` into ``sink`` now if connected, else once it connects."""
        raise NotImplementedError

    def read_here(self, request: ReadHere, done: Completion, seconds: float | None) -> bool:
        """Send ``request`` and read its answer in this thread: the socket's input is taken
        from the I/O thread before the request leaves, so the answer cannot wake it first
        (see :meth:`~pvflow.io.connection.Connection.read_reply`). A connection another
        thread reads, or one lost just now, leaves the read to the I/O thread."""
        channel = request.channel
        connection = self.caller_connection(channel.circuit)
        if connection is not None and connection.claim():
            try:
                request_id, answer_id = self._send_here(request)
            except DisconnectedError:
                connection.give_back()  # lost just now: read on the reconnection, below
            except BaseException:
                connection.give_back()
                raise
            else:
                request.ids.append(request_id)
                circuit = connection.circuit
                return connection.read_claimed(lambda: circuit.take_reply(answer_id), done,
                                               seconds)
        self._issue_read(request, channel, request.form, request.sink, request.as_string,
                         request.count)
        return self.wait_answer(request, done, seconds)

    def wait_answer(self, request: PendingRequest, done: Completion,
                    seconds: float | None) -> bool:
        """Wait for ``request``'s answer in ``done``: read in this thread when the protocol
        knows the id it carries and no other thread reads its circuit, else set by the I/O
        thread."""
        answer = self._answer_id(request)
        circuit = request.channel.circuit
        connection = None if answer is None else self.caller_connection(circuit)
        if connection is None:
            return done.wait(seconds)
        return connection.read_reply(lambda: circuit.take_reply(answer), done, seconds)

    def _answer_id(self, request: PendingRequest) -> int | None:
        """The id ``request``'s answer carries (``take_reply``'s), when a waiting caller may
        read it itself."""
        return None

    def caller_connection(self, circuit: Any) -> Connection[Any] | None:
        """The connection carrying ``circuit``, if a waiting caller may read it (the epoll
        loop only: see :class:`~pvflow.io.connection.Connection`), else None."""
        if circuit is None or not self.loop.shares_events:
            return None
        connection: Connection[Any] | None = self._connections.get((circuit.host, circuit.port))
        return connection if connection is not None and connection.circuit is circuit else None

    def send(self, channel: ChannelT, frame: bytes, on_io_thread: bool) -> None:
        """Send now from a caller thread; queue for the end-of-iteration flush on the I/O one."""
        if not frame:
            return
        circuit = channel.circuit
        connection = self._connections.get((circuit.host, circuit.port)) if circuit else None
        if connection is None or circuit is None or circuit.closed:
            raise DisconnectedError(f"{channel.name} lost its circuit", pv=channel.name)
        if on_io_thread:
            circuit.queue(frame)
            self.loop.at_end_of_iteration(connection, connection.flush)
        else:
            try:
                connection.send(frame)
            except DisconnectedError as exc:
                raise naming_pv(exc, channel.name) from None

    def timeout_error(self, channel: ChannelT, what: str, timeout: float | None
                      ) -> PVTimeoutError:
        shown = self.shown_prefix + channel.name
        if channel.state is CONNECTED:
            return no_answer(what, shown, channel.name, channel.address(), timeout)
        return PVTimeoutError(f"{shown} did not connect within {timeout} s "
                              f"({self._search_hint(channel)})", pv=channel.name)

    def _search_hint(self, channel: ChannelT) -> str:
        failure = channel.failure
        if channel.state is FAILED and failure is not None:
            wait = max(0.0, failure.retry_at - time.monotonic())
            return f"{failure.reason}; searched again when asked, {wait:.0f} s from now at " \
                   f"the earliest"
        if failure is not None:
            return f"{channel.state.value} again after {failure.reason}"
        if channel.state is SEARCHING:
            targets = ", ".join(f"{h}:{p}" for h, p in self._search_targets) or "no address"
            return f"no server answered the search to {targets}"
        return f"{channel.state.value} to {channel.address()}"

    def read_connected_now(self, channels: list[ChannelT], slots: list[int],
                           deferred: DeferredBlockReads) -> None:
        """Read the connected ``channels`` now, a block per circuit from the caller's thread;
        the others join ``deferred`` as they connect."""
        groups: dict[Any, tuple[list[ChannelT], list[int]]] = {}
        connected = CONNECTED
        waiting = deferred.slots
        on_connect = deferred.on_connect  # one bound method for all: a fresh connect has 10 000
        with self.lock:
            for channel, slot in zip(channels, slots):
                if channel.state is connected:
                    group = groups.setdefault(channel.circuit, ([], []))
                    group[0].append(channel)
                    group[1].append(slot)
                else:
                    waiting[channel] = slot
                    add_action(channel, on_connect)
                    if channel.failure is not None:
                        self.wanted_again(channel)
        for group_channels, group_slots in groups.values():
            deferred.read_group(group_channels, group_slots, on_io_thread=False)

    def unsubscribe(self, subscription: Any) -> None:
        subscription.mailbox.close()
        subscription.closed = True
        self.loop.call_soon(self._remove_subscription, subscription)

    def _remove_subscription(self, subscription: Any) -> None:
        """I/O thread: stop a monitor at its server and forget it."""
        raise NotImplementedError

    def issue_when_connected(self, request: PendingRequest, channel: ChannelT, sink: Sink,
                             frames: Callable[[ChannelT], bytes]) -> PendingRequest:
        """Send what ``frames(channel)`` makes (registering its ids on ``request``) once
        ``channel`` is connected; a failure goes to ``sink``."""
        def issue(ready: ChannelT, on_io_thread: bool) -> None:
            try:
                self.send(ready, frames(ready), on_io_thread)
            except (PVFlowError, ValueError) as exc:
                sink(exc)

        pending = self.when_connected(channel, issue)
        if pending is not None:
            request.actions.append(pending)
        return request

    # --- waiting for connections (part of the engine contract) --------------------------------
    def start_connect(self, channel: ChannelT, batch: Slots, slot: int) -> PendingRequest:
        request = PendingRequest(self, channel)
        pending = self.when_connected(channel, self.slot_sink(batch, slot, True))
        if pending is not None:
            request.actions.append(pending)
        return request

    def slot_sink(self, batch: Slots, slot: int, fixed: Any = None) -> Callable[..., None]:
        """A sink (or on-connect action) filling ``batch[slot]`` on the I/O thread, where
        the batch's countdown lives without a lock."""
        loop = self.loop
        in_loop = loop.in_loop

        def fill(result: Any, *_: Any) -> None:
            result = fixed if fixed is not None else result
            if in_loop():
                batch.set(slot, result)
            else:
                loop.call_soon(batch.set, slot, result)

        return fill

    # --- channels the server refused (see io/channel_failure.py) ------------------------------
    def when_connected(self, channel: ChannelT, action: Action) -> Action | None:
        pending = super().when_connected(channel, action)
        if pending is not None:
            self.wanted_again(channel)
        return pending

    def wanted_again(self, channel: ChannelT) -> None:
        """Any thread: somebody asks for ``channel``; if it failed, search once its back-off
        has passed."""
        failure = channel.failure
        if failure is not None and failure.active:
            self.loop.call_soon(self._ask_again, channel)

    def record_failure(self, channel: ChannelT, reason: str) -> None:
        """I/O thread, after the protocol marked ``channel`` failed: search again only when
        asked (requests already waiting count), after the back-off."""
        failure = channel.failure = channel.failure or ChannelFailure()
        failure.record(reason, time.monotonic())
        self._ask_again(channel)

    def _still_wanted(self, channel: ChannelT) -> bool:
        return bool(channel.on_connect or channel.subscriptions
                    or channel.watchers)

    def _ask_again(self, channel: ChannelT) -> None:
        failure = channel.failure
        if failure is None or not failure.active or failure.retry_scheduled or \
                not self._still_wanted(channel):
            return
        failure.retry_scheduled = True
        self.loop.call_later(max(0.0, failure.retry_at - time.monotonic()),
                             lambda: self._retry_failed(channel, failure))

    def _retry_failed(self, channel: ChannelT, failure: ChannelFailure) -> None:
        failure.retry_scheduled = False
        if failure.active and not self.closed and self._still_wanted(channel):
            failure.active = False
            self._resume_search(channel)

    def _resume_search(self, channel: ChannelT) -> None:
        """Put a failed channel back to searching."""
        if channel.state is FAILED:
            with self.lock:
                channel.state = SEARCHING
            self._search_again([channel])

    # --- a channel's life (I/O thread) ----------------------------------------------------------
    def _begin_search(self, channels: list[ChannelT]) -> None:
        self._search_again([channel for channel in channels
                            if channel.state is SEARCHING])

    def _search_again(self, channels: list[ChannelT]) -> None:
        if self._search is not None and channels:
            self._search.schedule.add_many(channels)

    def _found_many(self, answers: Iterable[Sequence[Any]]) -> dict[Any, list[ChannelT]]:
        """Servers have these channels, ``(cid, host, port, ...)`` each: the channels now
        connecting, by the connection (opened if need be) to create them on; stale answers and
        channels whose circuit does not open are left out. No object per channel: a batch
        that lives through thousands of answers is walked by every garbage collection."""
        search = self._search
        if search is None:
            return {}
        by_cid, connections = self.by_cid, self._connections
        searching, connecting = SEARCHING, CONNECTING
        found: dict[Any, list[ChannelT]] = {}
        cids = []
        server, connection = None, None  # the last answer's: a datagram's all come from one
        for answer in answers:
            cid = answer[0]
            channel = by_cid.get(cid)
            if channel is None or channel.state is not searching:
                continue  # a second server answered, or an answer to a search we dropped
            if (answer[1], answer[2]) != server:
                host, port = server = answer[1], answer[2]
                connection = connections.get(server)
            if connection is None:
                try:
                    connection = connections[host, port] = self._new_connection(host, port)
                except OSError as exc:
                    self.log.warning("%s: cannot open a circuit to %s:%s: %s", channel.name,
                                     host, port, exc)
                    search.schedule.answered(cid)
                    search.schedule.add(channel)
                    continue
            channel.state = connecting
            channel.circuit = connection.circuit
            connection.circuit.channels[cid] = channel
            channels = found.get(connection)
            if channels is None:
                channels = found[connection] = []
            channels.append(channel)
            cids.append(cid)
        search.schedule.answered_many(cids)
        return found

    def _created(self, channel: ChannelT) -> None:
        self._created_many([channel])

    def _created_many(self, channels: list[ChannelT]) -> None:
        """The server created ``channels``: tell their watchers, restart their monitors and
        run the requests that waited for them (under one lock: a fresh connect brings
        thousands at once)."""
        connected = CONNECTED
        # two lists, not a pair per channel: the batch may hold thousands (see _found_many)
        waited: list[ChannelT] = []
        waited_actions = []
        with self.lock:
            self.topology += len(channels)
            for channel in channels:
                channel.failure = None
                channel.state = connected
                if channel.on_connect:
                    waited.append(channel)
                    waited_actions.append(channel.on_connect)
                    channel.on_connect = NO_ACTIONS
                if channel.watchers:
                    self._post_connection(channel, True)
        for channel in channels:
            if channel.subscriptions:
                self._restart_subscriptions(channel)
        for channel, actions in zip(waited, waited_actions):
            for action in actions:
                try:
                    action(channel, True)
                except PVFlowError as exc:
                    self.log.debug("%s: deferred request failed: %s", channel.name, exc)

    def _post_connection(self, channel: ChannelT, connected: bool) -> None:
        """Tell the channel's watchers (if any: most channels have none)."""
        if channel.watchers:
            items = (ConnectionChange(True), self.access_of(channel)) if connected else (
                ConnectionChange(False),)
            for watcher in channel.watchers:
                for item in items:
                    watcher.post(item)

    def channel_failed(self, circuit: Any, channel: ChannelT, reason: str) -> None:
        """The server refused the channel (or gave one we cannot use): searching again at
        once would ask the same server the same question in a loop, so the channel waits
        until somebody asks for it and its back-off has passed."""
        self.log.warning("%s: channel creation failed at %s: %s", channel.name,
                         circuit.address_text, reason)
        was_connected = channel.state is CONNECTED
        with self.lock:
            channel.state = FAILED
            channel.circuit = None
            self.topology += 1
        if was_connected:
            self._post_connection(channel, False)
        self.record_failure(channel, f"{circuit.address_text}: {reason}")

    def _disconnected(self, channel: ChannelT, research: bool) -> None:
        was_connected = channel.state is CONNECTED
        with self.lock:
            channel.state = SEARCHING if research else CLOSED
            channel.circuit = None
            self.topology += 1
            self._circuit_gone(channel)
        if was_connected:
            self._post_connection(channel, False)
            for subscription in channel.subscriptions.values():
                subscription.mailbox.post(ConnectionChange(False))
        if research:
            self._search_again([channel])

    def close_connection(self, connection: Any, error: BaseException,
                         research: bool = True) -> None:
        circuit = connection.circuit
        if circuit.closed:
            return
        if isinstance(error, RemoteProtocolError):
            self.log.error("closing circuit to %s: %s", circuit.address_text, error)
        elif research:
            self.log.info("circuit to %s lost: %s", circuit.address_text, error)
        key: tuple[str, int] = connection.key
        if self._connections.get(key) is connection:
            del self._connections[key]
        if connection in self._name_server_connections:
            self._name_server_connections.remove(connection)
            if research:
                self.loop.call_later(NAME_SERVER_RETRY, lambda: self._open_name_server(key))
        lost = DisconnectedError(f"circuit to {circuit.address_text} closed: {error}",
                                 address=circuit.address_text)
        channels = circuit.close(lost)
        connection.close()
        for channel in channels:
            self._disconnected(channel, research)

    def _open_name_server(self, address: tuple[str, int]) -> None:
        """A TCP circuit to a name server (EPICS_*_NAME_SERVERS), asked for every channel
        still searching; reopened a second after it drops, as long as the Context lives."""
        if self.closed:
            return
        try:
            connection = self._new_connection(*address)
        except OSError as exc:
            self.log.warning("name server %s:%s: %s", *address, exc)
            self.loop.call_later(NAME_SERVER_RETRY, lambda: self._open_name_server(address))
            return
        self._name_server_connections.append(connection)
        self._name_server_opened(connection)

    def release(self, channels: Iterable[ChannelT]) -> None:
        """Forget ``channels``: their subscriptions and watches end and the server frees them."""
        released = self.forget(channels)
        for channel in released:
            for subscription in list(channel.subscriptions.values()):
                subscription.closed = True
                subscription.mailbox.close()
            for watcher in channel.watchers:
                watcher.close()
        if released:
            self.loop.call_soon(self._clear_channels, released)

    def _clear_channels(self, channels: list[ChannelT]) -> None:
        """I/O thread: tell the servers, and drop what the circuits hold of ``channels``."""
        for channel in channels:
            with self.lock:
                circuit, connected = channel.circuit, channel.state is CONNECTED
                channel.state = CLOSED
                channel.circuit = None
                channel.on_connect = NO_ACTIONS
                self.topology += 1
            if self._search is not None:
                self._search.schedule.remove(channel.cid)
            if circuit is not None:
                self._clear_on_circuit(channel, circuit, connected)

    def _shutdown(self, done: threading.Event) -> None:
        try:
            for connection in list(self._connections.values()) + self._name_server_connections:
                self.close_connection(connection, DisconnectedError("the Context was closed"),
                                      research=False)
            for channel in self.by_cid.values():
                for subscription in channel.subscriptions.values():
                    subscription.mailbox.close()
            if self._search is not None:
                self.loop.unregister(self._search.socket)
                self._search.close()
        finally:
            done.set()

    def _schedule_liveness(self) -> None:
        if not self.closed:
            self.loop.call_later(1.0, self._check_liveness)

    def _check_liveness(self) -> None:
        now = time.monotonic()
        for connection in list(self._connections.values()) + self._name_server_connections:
            circuit = connection.circuit
            if not connection.connected or circuit.closed:
                continue
            if connection.echo_sent is not None:
                if now - connection.echo_sent > ECHO_TIMEOUT:
                    self.close_connection(connection, DisconnectedError(
                        f"{circuit.address_text} did not answer an echo in {ECHO_TIMEOUT} s",
                        address=circuit.address_text))
            elif now - circuit.last_received > self._echo_after:
                connection.echo_sent = now
                self._send_echo(connection)
        self._schedule_liveness()

    def stats(self) -> dict[str, int]:
        """Counts for monitoring: channels, circuits, names still searching, and the names
        and datagrams searched so far (a datagram counted once whatever its targets)."""
        schedule = self._search.schedule if self._search else None
        return {"channels": len(self.by_name), "circuits": len(self._connections),
                "searching": schedule.waiting if schedule else 0,
                "searches_sent": schedule.names_sent if schedule else 0,
                "search_datagrams_sent": schedule.datagrams_sent if schedule else 0}


def user_name() -> str:
    """Who we tell servers we are (access security rules match on it)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "pvflow"
