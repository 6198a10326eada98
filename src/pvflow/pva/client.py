"""The PVA engine behind a Context: channels, circuits, sockets (transport layer).

It implements the engine contract (:mod:`pvflow.io.contract`) plus its optional RPC and
introspection, with the same threading rules as the CA engine: sockets and state changes
belong to the shared I/O thread; caller threads register a request under the channel's lock
and write its frame straight to the circuit's socket. A GET's server-side operation is created once per channel and request
shape and then reused, so a get of a connected channel is one round trip and a bulk get is
one write of EXEC frames per server.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import DisconnectedError, PVFlowError, naming_pv
from ..io.channels import CONNECTED, CONNECTING, add_subscription, remove_subscription
from ..io.connection import Connection as SocketConnection
from ..io.contract import ChannelInfo, Form, RemoteCalls, Sink, Slots
from ..io.delivery import Dispatcher, Mailbox
from ..io.engine import EngineBase
from ..io.loop import IOLoop
from ..io.requests import PendingRequest, ReadHere
from . import protocol
from .channel import Channel, ChannelLocks
from .circuit import Circuit
from .config import PVAConfig
from .operations import (FULL_REQUEST, GetOperation, MonitorOperation, OneShot, PutOperation,
                         send_puts)
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


class PutRequest(PendingRequest):
    """A put waited for: its answer comes to its PUT operation's ioid, not to its token."""

    __slots__ = ("ioid",)

    def __init__(self, engine: PVAClient, channel: Channel, ioid: int) -> None:
        super().__init__(engine, channel)
        self.ioid = ioid


class PVAClient(EngineBase[Channel]):
    """pvAccess for one Context."""

    log = log
    shown_prefix = "pva://"

    def __init__(self, config: PVAConfig, loop: IOLoop, dispatcher: Dispatcher):
        # pvxs echoes at half its connection timeout
        super().__init__(loop, ChannelLocks().new_channel, 0x7FFFFFFF,
                         config.connection_timeout / 2,
                         config.addresses, config.name_servers)
        self.config = config
        self.dispatcher = dispatcher
        self.host_name = socket.gethostname()
        self._start_on_io_thread()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None, loop: IOLoop,
                 dispatcher: Dispatcher) -> PVAClient:
        """The engine a Context makes for its scheme (``env`` replaces ``os.environ``)."""
        return cls(PVAConfig.from_env(env), loop, dispatcher)

    # --- setup and teardown (I/O thread) ---------------------------------------------------------
    def _open_search(self) -> NameSearch:
        return NameSearch(self.config.addresses, self._on_search_response,
                          self.loop.call_later, self._search_name_servers)

    def _new_connection(self, host: str, port: int) -> Connection:
        return Connection(self, host, port)

    # --- channels ---------------------------------------------------------------------------------
    def _search_name_servers(self, channels: list[Channel]) -> None:
        for connection in self._name_server_connections:
            circuit = connection.circuit
            if circuit.ready and not circuit.closed:
                for datagram in search_datagrams(channels, 0, 0):
                    circuit.queue(datagram)

    # --- requests (any thread) --------------------------------------------------------------------
    def _send_here(self, request: ReadHere) -> tuple[int, int]:
        """The answer a caller takes is its GET operation's (by the operation's ioid): the
        answer to its EXEC; on a channel's first get, the INIT's comes first, and the I/O
        thread's."""
        channel = request.channel
        token = self.read_now(channel, request.form, request.sink, request.as_string,
                              request.count)
        with channel.lock:
            operation = channel.get_operation(REQUESTS[request.form],
                                              request.form is not Form.VALUE)
        return token, operation.ioid

    def _issue_read(self, request: PendingRequest, channel: Channel, form: Form, sink: Sink,
                    as_string: bool, count: int | None) -> PendingRequest:
        if channel.state is CONNECTED:
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
        if circuit is None or channel.state is not CONNECTED:
            raise DisconnectedError(f"{channel.name} is not connected", pv=channel.name)
        text = REQUESTS[form]
        token = self.allocate_ids(1)
        with channel.lock:
            operation = channel.get_operation(text, form is not Form.VALUE)
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
        self.read_connected_now(channels, slots, deferred)
        return deferred

    def put(self, channel: Channel, value: Any, sink: Sink | None) -> PendingRequest:
        """Queue a put on the channel's PUT operation (created on first use, then reused).

        A put with a ``sink`` completes when the server has processed it (put-callback); one
        without goes through its own operation, so it never queues behind a slow record. Each
        waits only for the earlier puts of the other kind not yet sent (``next_puts``): the
        server takes a channel's puts in the order they were made."""
        circuit = channel.circuit
        if circuit is None or channel.state is not CONNECTED:
            raise DisconnectedError(f"{channel.name} is not connected", pv=channel.name)
        token = self.allocate_ids(1)
        block = sink is not None
        with channel.lock:
            operation = channel.puts.get(block)
            if operation is None:
                operation = channel.puts[block] = PutOperation(channel, block)
            try:
                body = operation.encode(value)
            except (ValueError, TypeError, OverflowError, struct.error) as exc:
                raise ValueError(f"cannot put {value!r} to pva://{channel.name}: {exc}") from None
            # sent under the lock: the puts of a channel leave in the order they were taken
            self.send(channel, operation.request(circuit, (token, value, sink, body)), False)
        if not block:
            return PendingRequest(self, channel)
        request = PutRequest(self, channel, operation.ioid)
        request.ids.append(token)
        return request

    def _answer_id(self, request: PendingRequest) -> int | None:
        """A waited put's answer: the caller reads it, as a get's (``Circuit.take_reply``)."""
        return request.ioid if isinstance(request, PutRequest) else None

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

    def cancel(self, channel: Channel, token: int) -> bool:
        """Forget a request; False when its answer is already being delivered."""
        with channel.lock:
            operations: list[Any] = [*channel.get_operations(), *channel.puts.values()]
            cancelled = any(operation.cancel(token) for operation in operations)
            circuit = channel.circuit
            if cancelled and channel.puts and circuit is not None:
                send_puts(circuit, channel)  # a put of the other kind waited on this one
        return cancelled

    def _clear_on_circuit(self, channel: Channel, circuit: Circuit, connected: bool) -> None:
        circuit.channels.pop(channel.cid, None)
        circuit.by_sid.pop(channel.sid, None)
        released = naming_pv(DisconnectedError("the channel was released"), channel.name)
        for ioid, operation in list(circuit.operations.items()):
            if getattr(operation, "channel", None) is channel:
                circuit.operations.pop(ioid, None)
                operation.lost(released)
        if connected and not circuit.closed:
            circuit.queue(protocol.destroy_channel(channel.sid, channel.cid))

    # --- subscriptions and watches ----------------------------------------------------------------
    def subscribe(self, channel: Channel, form: Form, mask: int, mailbox: Mailbox,
                  queue_size: int = 100, request_text: str | None = None,
                  as_string: bool = False, dtype: str | None = None) -> MonitorOperation:
        """Start a monitor (``mask`` is CA's; a PVA server posts what its pvRequest asks;
        ``dtype`` too: pvAccess values carry their own type)."""
        # everything by default: an image needs its dimensions, a table its labels; after the
        # first update the server sends only the fields that changed
        text = request_text if request_text is not None else FULL_REQUEST
        subscription = MonitorOperation(self.allocate_ids(1), channel, text,
                                        form is not Form.VALUE, mailbox, queue_size, as_string)
        with self.lock:
            add_subscription(channel, subscription.token, subscription)
            connected = channel.state is CONNECTED
            circuit = channel.circuit
        self.wanted_again(channel)
        if connected and circuit is not None:
            try:
                self.send(channel, subscription.start(circuit), False)
            except DisconnectedError:
                pass  # restarted when the channel reconnects
        return subscription

    def _remove_subscription(self, subscription: MonitorOperation) -> None:
        channel = subscription.channel
        with self.lock:
            remove_subscription(channel, subscription.token)
        circuit = channel.circuit
        if circuit is not None and channel.state is CONNECTED and \
                circuit.operations.get(subscription.ioid) is subscription:
            circuit.queue(subscription.stop(circuit))

    # --- events from the search and the circuits (I/O thread) -------------------------------------
    def _on_search_response(self, response: protocol.SearchResponse) -> None:
        """Create the channels a server has; one frame for all the names of one answer."""
        creates: list[tuple[int, str]] = []
        circuit = None
        host, port = response.host, response.port
        found = self._found_many([(cid, host, port) for cid in response.cids])
        for connection, channels in found.items():
            circuit = connection.circuit
            if circuit.ready:
                creates.extend((channel.cid, channel.name) for channel in channels)
        if creates and circuit is not None:
            circuit.queue(protocol.create_channel(creates))
        elif circuit is not None and not circuit.ready and self._search is not None:
            self._search.yield_to_circuits = True  # its channels are created once it is ready

    def search_answered(self, circuit: Circuit, response: protocol.SearchResponse) -> None:
        if response.found:
            self._on_search_response(response)

    def circuit_ready(self, circuit: Circuit) -> None:
        pending = [(channel.cid, channel.name) for channel in circuit.channels.values()
                   if channel.state is CONNECTING]
        if pending:
            circuit.queue(protocol.create_channel(pending))

    def channel_created(self, circuit: Circuit, channel: Channel, sid: int) -> None:
        channel.sid = sid
        self._created(channel)

    def _restart_subscriptions(self, channel: Channel) -> None:
        circuit = channel.circuit
        if circuit is not None:
            for subscription in list(channel.subscriptions.values()):
                circuit.queue(subscription.start(circuit))

    def _circuit_gone(self, channel: Channel) -> None:
        operations: list[GetOperation | PutOperation] = [*channel.get_operations(),
                                                          *channel.puts.values()]
        for operation in operations:
            operation.state = 0

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
