"""The PVA engine behind a Context: channels, circuits, sockets (transport layer).

It implements the engine contract (:mod:`pvflow.io.contract`) plus its optional RPC and
introspection, with the same threading rules as the CA engine: sockets and state changes
belong to the shared I/O thread; caller threads register a request under the channel's lock
and write its frame straight to the circuit's socket. A GET's server-side operation is created once per channel and request
shape and then reused, so a get of a connected channel is one round trip and a bulk get is
one write of EXEC frames per server.
"""

from __future__ import annotations

import getpass
import logging
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import (DisconnectedError, PVFlowError, PVTimeoutError, RemoteProtocolError,
                      naming_pv, no_answer)
from ..io.channels import FULL_ACCESS
from ..io.connection import Connection as SocketConnection
from ..io.contract import ChannelInfo, Form, RemoteCalls, Sink, Slots
from ..io.delivery import ConnectionChange, Dispatcher, Mailbox
from ..io.engine import EngineBase
from ..io.loop import READ, IOLoop
from ..io.requests import PendingRequest
from . import protocol
from .channel import Channel, ChannelState
from .circuit import Circuit
from .config import PVAConfig
from .operations import FULL_REQUEST, GetOperation, MonitorOperation, OneShot, PutOperation
from .protocol import Command
from .pvdata import FieldType, type_of
from .bulk import REQUESTS, DeferredReads
from .search import NameSearch, search_datagrams

log = logging.getLogger("pvflow.pva")

Action = Callable[[Channel, bool], None]


class Connection(SocketConnection[Circuit]):
    """A pvAccess circuit on a TCP connection; the handshake starts when the server sends
    CONNECTION_VALIDATION."""

    client: PVAClient

    def _make_circuit(self, host: str, port: int) -> Circuit:
        client = self.client
        return Circuit(host, port, client, self.send, self._flush_soon, client.allocate_ids,
                       client.user_name, client.host_name)

    def _flush_soon(self) -> None:
        self.client.loop.at_end_of_iteration(self, self.flush)


class PVAClient(EngineBase[Channel]):
    """pvAccess for one Context."""

    def __init__(self, config: PVAConfig, loop: IOLoop, dispatcher: Dispatcher):
        # pvxs echoes at half its connection timeout
        super().__init__(loop, Channel, self._begin_search, 0x7FFFFFFF,
                         config.connection_timeout / 2)
        self.config = config
        self.dispatcher = dispatcher
        self.user_name = _user_name()
        self.host_name = socket.gethostname()
        ready = threading.Event()
        loop.call_soon(self._start, ready)
        if not ready.wait(10):
            raise PVFlowError("the pvflow I/O thread did not start")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None, loop: IOLoop,
                 dispatcher: Dispatcher) -> PVAClient:
        """The engine a Context makes for its scheme (``env`` replaces ``os.environ``)."""
        return cls(PVAConfig.from_env(env), loop, dispatcher)

    # --- setup and teardown (I/O thread) ---------------------------------------------------------
    def _start(self, ready: threading.Event) -> None:
        try:
            self._search = NameSearch(self.config.addresses, self._on_search_response,
                                      self.loop.call_later, self._search_name_servers)
            self.loop.register(self._search.socket, READ, self._search.on_readable)
            for host, port in self.config.name_servers:
                self._name_server_connections.append(Connection(self, host, port))
            self._schedule_liveness()
        finally:
            ready.set()

    # --- channels ---------------------------------------------------------------------------------
    def _begin_search(self, channels: list[Channel]) -> None:
        if self._search is not None:
            self._search.schedule.add_many(channel for channel in channels
                                           if channel.state is ChannelState.SEARCHING)

    def _search_name_servers(self, channels: list[Channel]) -> None:
        for connection in self._name_server_connections:
            circuit = connection.circuit
            if circuit.ready and not circuit.closed:
                for datagram in search_datagrams(channels, 0, 0):
                    circuit.queue(datagram)

    # --- requests (any thread) --------------------------------------------------------------------
    def start_read(self, channel: Channel, form: Form, sink: Sink, as_string: bool,
                   count: int | None) -> PendingRequest:
        request = PendingRequest(self, channel)
        if channel.state is ChannelState.CONNECTED:
            try:  # the common case, straight from this thread
                request.ids.append(self.read_now(channel, form, sink, as_string, count))
                return request
            except DisconnectedError:
                pass  # lost just now: wait for the reconnection like any unconnected channel

        def frame(ready: Channel) -> bytes:
            token, made = self.read_frame(ready, form, sink, as_string=as_string)
            request.ids.append(token)
            return made

        return self.issue_when_connected(request, channel, sink, frame)

    def read_many(self, channels: list[Channel], slots: list[int], form: Form,
                  as_string: bool, batch: Slots) -> DeferredReads:
        return self.read_when_connected(channels, slots, form, batch, as_string)

    def read_frame(self, channel: Channel, form: Form, sink: Sink, *,
                   as_string: bool = False, count: int | None = None) -> tuple[int, bytes]:
        """Queue a get on the channel's GET operation; return its token and the frame to send
        (an EXEC, the operation's INIT on first use, or nothing while one is in flight)."""
        circuit = channel.circuit
        if circuit is None or channel.state is not ChannelState.CONNECTED:
            raise DisconnectedError(f"{channel.name} is not connected", pv=channel.name)
        text = REQUESTS[form]
        token = self.allocate_ids(1)
        with channel.lock:
            operation = channel.gets.get(text)
            if operation is None:
                operation = channel.gets[text] = GetOperation(channel, text,
                                                              form is not Form.VALUE)
            frame = operation.request(circuit, (token, sink, as_string))
        return token, frame

    def read_now(self, channel: Channel, form: Form, sink: Sink,
                 as_string: bool = False, count: int | None = None) -> int:
        token, frame = self.read_frame(channel, form, sink, as_string=as_string)
        self.send(channel, frame, False)
        return token

    def read_when_connected(self, channels: list[Channel], slots: list[int], form: Form,
                            batch: Slots, as_string: bool = False) -> DeferredReads:
        deferred = DeferredReads(self, form, batch, as_string)
        groups: dict[Circuit | None, tuple[list[Channel], list[int]]] = {}
        with self.lock:
            for channel, slot in zip(channels, slots):
                if channel.state is ChannelState.CONNECTED:
                    group = groups.setdefault(channel.circuit, ([], []))
                    group[0].append(channel)
                    group[1].append(slot)
                else:
                    deferred.slots[channel] = slot
                    channel.on_connect.append(deferred.on_connect)
                    self.wanted_again(channel)
        for group_channels, group_slots in groups.values():
            deferred.read_group(group_channels, group_slots, on_io_thread=False)
        return deferred

    def put(self, channel: Channel, value: Any, sink: Sink | None) -> PendingRequest:
        """Queue a put on the channel's PUT operation (created on first use, then reused).

        A put with a ``sink`` completes when the server has processed it (put-callback); one
        without goes through its own operation, so it never queues behind a slow record."""
        circuit = channel.circuit
        if circuit is None or channel.state is not ChannelState.CONNECTED:
            raise DisconnectedError(f"{channel.name} is not connected", pv=channel.name)
        token = self.allocate_ids(1)
        block = sink is not None
        with channel.lock:
            operation = channel.puts.get(block)
            if operation is None:
                operation = channel.puts[block] = PutOperation(channel, block)
            try:
                operation.check(value)
            except (ValueError, TypeError, OverflowError, struct.error) as exc:
                raise ValueError(f"cannot put {value!r} to pva://{channel.name}: {exc}") from None
            frame = operation.request(circuit, (token, value, sink))
        self.send(channel, frame, False)
        request = PendingRequest(self, channel)
        if block:
            request.ids.append(token)
        return request

    def info(self, channel: Channel, sink: Sink) -> PendingRequest:
        """The type from GET_FIELD; for an array, its length from a get of its value."""
        request = PendingRequest(self, channel)

        def described(field_type: Any) -> None:
            if isinstance(field_type, BaseException):
                sink(field_type)
                return
            shown = _shown_type(field_type)
            if shown is None or not shown.is_array:
                sink(_info(channel, shown, 1))
                return

            def counted(value: Any) -> None:
                request.ids.clear()
                sink(value if isinstance(value, BaseException) else
                     _info(channel, shown, len(value)))

            try:
                token, frame = self.read_frame(channel, Form.VALUE, counted, as_string=False)
                request.ids.append(token)
                self.send(channel, frame, True)
            except (PVFlowError, ValueError) as exc:
                sink(exc)

        self.introspect(channel, described)
        return request

    # --- RPC and introspection (the optional part of the engine contract) -----------------------
    @property
    def remote_calls(self) -> RemoteCalls[Channel]:
        return self

    def introspect(self, channel: Channel, sink: Sink) -> PendingRequest:
        """GET_FIELD: ``sink`` gets the channel's :class:`FieldType` (or an error)."""
        return self._one_shot(channel, OneShot(channel, Command.GET_FIELD, sink))

    def rpc(self, channel: Channel, argument: Any, sink: Sink,
            argument_type: FieldType | None = None) -> PendingRequest:
        if argument is not None and argument_type is None:
            argument_type = type_of(argument)
        return self._one_shot(channel, OneShot(channel, Command.RPC, sink, argument,
                                               argument_type))

    def _one_shot(self, channel: Channel, operation: OneShot) -> PendingRequest:
        """Run ``operation`` once connected; it cannot be taken back, only left unanswered."""
        def frame(ready: Channel) -> bytes:
            circuit = ready.circuit
            if circuit is None:
                raise DisconnectedError(f"{ready.name} lost its circuit", pv=ready.name)
            return operation.start(circuit)

        return self.issue_when_connected(PendingRequest(self, channel), channel, operation.sink,
                                         frame)

    def send(self, channel: Channel, frame: bytes, on_io_thread: bool) -> None:
        if not frame:
            return
        circuit = channel.circuit
        connection = self._connections.get((circuit.host, circuit.port)) if circuit else None
        if connection is None or circuit is None or circuit.closed:
            raise DisconnectedError(f"{channel.name} lost its circuit", pv=channel.name)
        if on_io_thread:
            circuit.queue(frame)
        else:
            try:
                connection.send(frame)
            except DisconnectedError as exc:
                raise naming_pv(exc, channel.name) from None

    def cancel(self, channel: Channel, token: int) -> bool:
        """Forget a request; False when its answer is already being delivered."""
        with channel.lock:
            operations: list[Any] = [*channel.gets.values(), *channel.puts.values()]
            return any(operation.cancel(token) for operation in operations)

    def timeout_error(self, channel: Channel, what: str, timeout: float | None) -> PVTimeoutError:
        if channel.state is ChannelState.CONNECTED:
            return no_answer(what, f"pva://{channel.name}", channel.name, channel.address(),
                             timeout)
        if channel.state is ChannelState.FAILED and channel.failure is not None:
            hint = f"{channel.failure.reason}; searched again when asked"
        elif channel.state is ChannelState.SEARCHING:
            targets = ", ".join(f"{h}:{p}" for h, p in self.config.addresses) or "no address"
            hint = f"no server answered the search to {targets}"
        else:
            hint = f"{channel.state.value} to {channel.address()}"
        return PVTimeoutError(f"pva://{channel.name} did not connect within {timeout} s "
                              f"({hint})", pv=channel.name)

    def _clear_channels(self, channels: list[Channel]) -> None:
        released = DisconnectedError("the channel was released")
        for channel in channels:
            with self.lock:
                circuit, connected = channel.circuit, channel.state is ChannelState.CONNECTED
                channel.state = ChannelState.CLOSED
                channel.circuit = None
                channel.on_connect.clear()
            if self._search is not None:
                self._search.schedule.remove(channel.cid)
            if circuit is None:
                continue
            circuit.channels.pop(channel.cid, None)
            circuit.by_sid.pop(channel.sid, None)
            for ioid, operation in list(circuit.operations.items()):
                if getattr(operation, "channel", None) is channel:
                    circuit.operations.pop(ioid, None)
                    operation.lost(naming_pv(released, channel.name))
            if connected and not circuit.closed:
                circuit.queue(protocol.destroy_channel(channel.sid, channel.cid))

    # --- subscriptions and watches ----------------------------------------------------------------
    def subscribe(self, channel: Channel, form: Form, mask: int, mailbox: Mailbox,
                  queue_size: int = 100, request_text: str | None = None,
                  as_string: bool = False) -> MonitorOperation:
        """Start a monitor (``mask`` is CA's; a PVA server posts what its pvRequest asks)."""
        # everything by default: an image needs its dimensions, a table its labels; after the
        # first update the server sends only the fields that changed
        text = request_text if request_text is not None else FULL_REQUEST
        subscription = MonitorOperation(self.allocate_ids(1), channel, text,
                                        form is not Form.VALUE, mailbox, queue_size, as_string)
        with self.lock:
            channel.subscriptions[subscription.token] = subscription
            connected = channel.state is ChannelState.CONNECTED
            circuit = channel.circuit
        self.wanted_again(channel)
        if connected and circuit is not None:
            try:
                self.send(channel, subscription.start(circuit), False)
            except DisconnectedError:
                pass  # restarted when the channel reconnects
        return subscription

    def unsubscribe(self, subscription: MonitorOperation) -> None:
        subscription.mailbox.close()
        subscription.closed = True
        self.loop.call_soon(self._remove_subscription, subscription)

    def _remove_subscription(self, subscription: MonitorOperation) -> None:
        channel = subscription.channel
        channel.subscriptions.pop(subscription.token, None)
        circuit = channel.circuit
        if circuit is not None and channel.state is ChannelState.CONNECTED and \
                circuit.operations.get(subscription.ioid) is subscription:
            circuit.queue(subscription.stop(circuit))

    # --- events from the search and the circuits (I/O thread) -------------------------------------
    def _on_search_response(self, response: protocol.SearchResponse) -> None:
        for cid in response.cids:
            channel = self.by_cid.get(cid)
            if channel is None or channel.state is not ChannelState.SEARCHING:
                continue  # a second server answered, or an answer to a search we dropped
            if self._search is not None:
                self._search.schedule.answered(cid)
            key = (response.host, response.port)
            connection = self._connections.get(key)
            if connection is None:
                try:
                    connection = self._connections[key] = Connection(self, *key)
                except OSError as exc:
                    log.warning("%s: cannot open a circuit to %s:%s: %s", channel.name, *key, exc)
                    if self._search is not None:
                        self._search.schedule.add(channel)
                    continue
            channel.state = ChannelState.CONNECTING
            channel.circuit = connection.circuit
            connection.circuit.channels[channel.cid] = channel
            if connection.circuit.ready:
                connection.circuit.queue(protocol.create_channel([(channel.cid, channel.name)]))

    def search_answered(self, circuit: Circuit, response: protocol.SearchResponse) -> None:
        if response.found:
            self._on_search_response(response)

    def circuit_ready(self, circuit: Circuit) -> None:
        pending = [(channel.cid, channel.name) for channel in circuit.channels.values()
                   if channel.state is ChannelState.CONNECTING]
        if pending:
            circuit.queue(protocol.create_channel(pending))

    def channel_created(self, circuit: Circuit, channel: Channel, sid: int) -> None:
        channel.sid = sid
        channel.failure = None
        with self.lock:
            channel.state = ChannelState.CONNECTED
            actions, channel.on_connect = channel.on_connect, []
            for watcher in channel.watchers:
                watcher.post(ConnectionChange(True))
                watcher.post(FULL_ACCESS)
        for subscription in list(channel.subscriptions.values()):
            circuit.queue(subscription.start(circuit))
        for action in actions:
            try:
                action(channel, True)
            except PVFlowError as exc:
                log.debug("%s: deferred request failed: %s", channel.name, exc)

    def channel_failed(self, circuit: Circuit, channel: Channel, reason: str) -> None:
        log.warning("%s: channel creation failed at %s: %s", channel.name, circuit.address_text,
                    reason)
        with self.lock:
            channel.state = ChannelState.FAILED
            channel.circuit = None
        self.record_failure(channel, f"{circuit.address_text}: {reason}")

    def _resume_search(self, channel: Channel) -> None:
        if channel.state is ChannelState.FAILED:
            with self.lock:
                channel.state = ChannelState.SEARCHING
            if self._search is not None:
                self._search.schedule.add(channel)

    def channel_lost(self, circuit: Circuit, channel: Channel) -> None:
        error = DisconnectedError(f"{circuit.address_text} destroyed channel {channel.name}",
                                  pv=channel.name, address=circuit.address_text)
        for ioid, operation in list(circuit.operations.items()):
            if getattr(operation, "channel", None) is channel:
                circuit.operations.pop(ioid, None)
                operation.lost(error)
        self._disconnected(channel, research=True)

    def _send_echo(self, connection: Any) -> None:
        connection.circuit.queue(protocol.echo())  # the PVA circuit flushes its own output

    def close_connection(self, connection: Connection, error: BaseException,
                         research: bool = True) -> None:
        circuit = connection.circuit
        if circuit.closed:
            return
        if isinstance(error, RemoteProtocolError):
            log.error("closing circuit to %s: %s", circuit.address_text, error)
        elif research:
            log.info("circuit to %s lost: %s", circuit.address_text, error)
        if self._connections.get(connection.key) is connection:
            del self._connections[connection.key]
        lost = DisconnectedError(f"circuit to {circuit.address_text} closed: {error}",
                                 address=circuit.address_text)
        channels = circuit.close(lost)
        connection.close()
        for channel in channels:
            self._disconnected(channel, research)
        if connection in self._name_server_connections and not self.closed:
            index = self._name_server_connections.index(connection)
            self.loop.call_later(2.0, lambda: self._reconnect_name_server(index))

    def _reconnect_name_server(self, index: int) -> None:
        if not self.closed:
            host, port = self._name_server_connections[index].key
            try:
                self._name_server_connections[index] = Connection(self, host, port)
            except OSError:
                self.loop.call_later(2.0, lambda: self._reconnect_name_server(index))

    def _disconnected(self, channel: Channel, research: bool) -> None:
        was_connected = channel.state is ChannelState.CONNECTED
        with self.lock:
            channel.state = ChannelState.SEARCHING if research else ChannelState.CLOSED
            channel.circuit = None
            operations: list[GetOperation | PutOperation] = [*channel.gets.values(),
                                                              *channel.puts.values()]
            for operation in operations:
                operation.state = 0
        if was_connected:
            for watcher in channel.watchers:
                watcher.post(ConnectionChange(False))
            for subscription in channel.subscriptions.values():
                subscription.mailbox.post(ConnectionChange(False))
        if research and self._search is not None:
            self._search.schedule.add(channel)

    # --- liveness (I/O thread) --------------------------------------------------------------------


def _shown_type(field_type: FieldType | None) -> FieldType | None:
    """What ``info`` describes of a type: its ``value`` field unless that is a structure."""
    value = field_type.lookup("value") if field_type is not None else None
    return value if value is not None and value.code != 0x80 else field_type


def _info(channel: Channel, shown: FieldType | None, count: int) -> ChannelInfo:
    # pvAccess has no access-rights message: a server refuses a put when it happens
    return ChannelInfo(channel.name, channel.address(),
                       shown.describe() if shown is not None else "none", count, True, True,
                       channel.state.value)


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "pvflow"
