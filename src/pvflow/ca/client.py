"""The CA engine behind a Context: channels, circuits, sockets (transport layer).

Threading: sockets, the selector, the search and every state change of a channel belong to
the I/O thread. Caller threads do two things directly, because a thread hop costs more than
the work: they register a request in a circuit's ``pending`` dict and write its frame to the
circuit's socket (under the circuit's send lock). Everything else goes through
``loop.call_soon``. A channel that is not connected yet takes the request as an ``on_connect``
action, which the I/O thread runs the moment CREATE_CHAN is answered: a fresh connect+read of
1000 PVs is three pipelined exchanges (search, create, read), not 1000 round trips.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..errors import AccessDeniedError, DisconnectedError, PVFlowError
from ..io.channels import CONNECTED, SEARCHING, add_subscription, remove_subscription
from ..io.connection import Connection as SocketConnection
from ..io.contract import BulkRequest, ChannelInfo, Form, Sink, Slots
from ..io.delivery import AccessChange, ConnectionChange, Dispatcher, Mailbox
from ..io.engine import EngineBase
from ..io.loop import IOLoop
from ..io.requests import ANSWERED, Answered, BulkRequests, PendingRequest, ReadHere
from . import protocol
from .channel import Channel, ReadRequest, Subscription, WriteRequest
from .circuit import Circuit
from .config import CAConfig
from .dbr import DECODERS, UNSIGNED_REQUEST, Native, decoder, encode_put
from .dbr import Form as DbrForm
from .reads import DBR_FORMS, BlockPlan, DeferredReads, JoinedReading, JoinedSlots
from .search import NameSearch

log = logging.getLogger("pvflow.ca")
_READ, _WRITE = int(protocol.AccessRights.READ), int(protocol.AccessRights.WRITE)

Action = Callable[[Channel, bool], None]  # (channel, on_io_thread)
NOT_NUMBERS = (Native.STRING, Native.ENUM)  # an unsigned reading would not apply


class Connection(SocketConnection[Circuit]):
    """A Channel Access circuit on a TCP connection; the handshake goes first."""

    client: CAClient

    def _make_circuit(self, host: str, port: int) -> Circuit:
        circuit = Circuit(host, port, self.client, self.send, self.client.config.max_payload)
        circuit.handshake(socket.gethostname(), self.client.user_name)
        return circuit


class CAClient(EngineBase[Channel]):
    """Channel Access for one Context."""

    log = log

    def __init__(self, config: CAConfig, loop: IOLoop, dispatcher: Dispatcher):
        super().__init__(loop, Channel, 0xFFFFFFFF, config.connection_timeout,
                         config.addresses, config.name_servers)
        self.config = config
        self.dispatcher = dispatcher
        self._start_on_io_thread()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None, loop: IOLoop,
                 dispatcher: Dispatcher) -> CAClient:
        """The engine a Context makes for its scheme (``env`` replaces ``os.environ``)."""
        return cls(CAConfig.from_env(env), loop, dispatcher)

    # --- setup and teardown (I/O thread) ---------------------------------------------------------
    def _open_search(self) -> NameSearch:
        search = NameSearch(self.config.addresses, self.config.repeater_port,
                            self._on_search_responses, self.loop.call_later)
        search.register_with_repeater()
        return search

    def _new_connection(self, host: str, port: int) -> Connection:
        return Connection(self, host, port)

    def _name_server_opened(self, connection: Connection) -> None:
        for channel in self.by_cid.values():
            if channel.state is SEARCHING:
                connection.circuit.queue(protocol.search(channel.wire_name, channel.cid))

    # --- channels ---------------------------------------------------------------------------------
    def _search_again(self, channels: list[Channel]) -> None:
        """Over UDP, and over TCP to the name servers (which have no back-off to follow)."""
        super()._search_again(channels)
        if self._search is None or not channels:
            return
        for connection in self._name_server_connections:
            for channel in channels:
                connection.circuit.queue(protocol.search(channel.wire_name, channel.cid))
            self.loop.at_end_of_iteration(connection, connection.flush)

    def _clear_on_circuit(self, channel: Channel, circuit: Circuit, connected: bool) -> None:
        circuit.channels.pop(channel.cid, None)
        for subscription_id in channel.subscriptions:
            circuit.subscriptions.pop(subscription_id, None)
        connection = self._connections.get((circuit.host, circuit.port))
        if connected and connection is not None:
            circuit.queue(protocol.clear_channel(channel.sid, channel.cid))
            self.loop.at_end_of_iteration(connection, connection.flush)

    # --- requests (any thread) --------------------------------------------------------------------
    def _reads_here(self, form: Form) -> bool:
        return form is not Form.CONTROL  # a CTRL and a TIME read, joined: two answers

    def _issue_read(self, request: PendingRequest, channel: Channel, form: Form, sink: Sink,
                    as_string: bool, count: int | None) -> PendingRequest:
        if form is not Form.CONTROL and channel.state is CONNECTED:
            try:  # the common case, straight from this thread
                request.ids.append(self.read_now(channel, DBR_FORMS[form], sink, as_string,
                                                 count))
                return request
            except DisconnectedError:
                pass  # lost just now: wait for the reconnection like any unconnected channel
        reads: tuple[tuple[int, Sink], ...] = ((DBR_FORMS[form], sink),)
        if form is Form.CONTROL:  # metadata and timestamp come in two reads: join them
            join = JoinedReading(sink)
            reads = ((DbrForm.CTRL, join.part), (DbrForm.TIME, join.part))

        def frames(ready: Channel) -> bytes:
            made = []
            for family, part_sink in reads:
                ioid, frame = self.read_frame(ready, family, part_sink, as_string=as_string,
                                              count=count)
                request.ids.append(ioid)
                made.append(frame)
            return b"".join(made)

        return self.issue_when_connected(request, channel, sink, frames)

    def _send_here(self, request: ReadHere) -> tuple[int, int]:
        ioid = self.read_now(request.channel, DBR_FORMS[request.form], request.sink,
                             request.as_string, request.count)
        return ioid, ioid

    def _answer_id(self, request: PendingRequest) -> int | None:
        """A single request's ioid: its answer carries it."""
        return request.ids[0] if len(request.ids) == 1 else None

    def read_many(self, channels: list[Channel], slots: list[int], form: Form,
                  as_string: bool, batch: Slots) -> BulkRequest:
        if as_string:  # the block decoders read native types: strings go one by one
            singles = BulkRequests()
            for channel, slot in zip(channels, slots):
                singles.singles[slot] = self.start_read(channel, form,
                                                        self.slot_sink(batch, slot), True, None)
            return singles
        if form is Form.CONTROL:
            joined = JoinedSlots(batch)
            return BulkRequests([self.read_when_connected(channels, slots, family, joined)
                                 for family in (DbrForm.CTRL, DbrForm.TIME)])
        return self.read_when_connected(channels, slots, DBR_FORMS[form], batch)

    def info(self, channel: Channel, sink: Sink) -> Answered:
        """Answered from what the server said when the channel connected."""
        access = channel.access
        sink(ChannelInfo.of(channel.name, channel.address(), channel.native.name, channel.count,
                            bool(access & _READ), bool(access & _WRITE), channel.state.value))
        return ANSWERED

    def read_frame(self, channel: Channel, form: int, sink: Callable[[Any], None], *,
                   as_string: bool = False, count: int | None = None) -> tuple[int, bytes]:
        """Register a READ_NOTIFY on the channel's circuit; return its ioid and frame."""
        circuit = channel.circuit
        if circuit is None:
            raise DisconnectedError(f"{channel.name} is not connected", pv=channel.name)
        if count is not None and count > channel.count:
            # libca refuses such a request too (ECA_BADCOUNT): the server would allocate it
            raise ValueError(f"get of {channel.name}: count {count} is more than the "
                             f"{channel.count} elements the channel holds")
        native = Native.STRING if as_string and channel.native in (
            Native.ENUM, Native.STRING) else channel.native
        as_array = channel.count != 1 if count is None else count != 1
        if count is None:
            count = 0 if channel.count != 1 and circuit.server_version >= 13 else channel.count
        ioid = self.allocate_ids(1)
        text = as_string and native == Native.CHAR
        request = ReadRequest(channel, decoder(form + native, True) if text else
                              DECODERS[form + native], as_array, form != DbrForm.PLAIN, sink)
        circuit.pending[ioid] = request
        return ioid, protocol.read_notify(form + native, count, channel.sid, ioid)

    def read_when_connected(self, channels: list[Channel], slots: list[int], form: int,
                            batch: Slots) -> DeferredReads:
        """Read ``channels`` into ``slots`` of ``batch``: the connected ones now, from the
        caller's thread, the others as they connect; in ioid blocks per circuit either way."""
        deferred = DeferredReads(self, form, batch)
        connected_state = CONNECTED
        circuits = {channel.circuit if channel.state is connected_state else None
                    for channel in channels}
        if len(circuits) == 1 and None not in circuits:  # the common case: all on one server
            plan = BlockPlan(self, channels, form, slots)
            try:
                deferred.reads.append(plan.send(batch))
                deferred.plan = plan
            except DisconnectedError as error:
                for slot in slots:
                    self.loop.call_soon(batch.set, slot, error)
            return deferred
        self.read_connected_now(channels, slots, deferred)
        return deferred

    def connection_of(self, channel: Channel) -> Connection | None:
        circuit = channel.circuit
        return self._connections.get((circuit.host, circuit.port)) if circuit else None

    def read_now(self, channel: Channel, form: int, sink: Sink,
                 as_string: bool = False, count: int | None = None) -> int:
        """Read a connected channel from the caller's thread: no hand-over, one send."""
        circuit = channel.circuit
        if circuit is None:
            raise DisconnectedError(f"{channel.name} is not connected", pv=channel.name)
        ioid, frame = self.read_frame(channel, form, sink, as_string=as_string, count=count)
        circuit.send_now(frame)
        # closed under us: unless the closing already failed the request (its sink has the
        # error), the caller retries once the channel reconnects
        if circuit.closed and circuit.pending.pop(ioid, None) is not None:
            raise DisconnectedError(f"{channel.name} lost its circuit", pv=channel.name)
        return ioid

    def put(self, channel: Channel, value: Any, sink: Sink | None) -> PendingRequest:
        """Send a put from the caller's thread: WRITE_NOTIFY when ``sink`` waits for the
        server's completion, else a plain WRITE. A string for an enum whose choices are not
        known yet waits for a CTRL read of them (and then leaves from the I/O thread)."""
        request = PendingRequest(self, channel)
        if channel.native == Native.ENUM and isinstance(value, str) and \
                not channel.enum_strings:
            self._put_after_choices(request, channel, value, sink)
            return request
        ioid = self._put_now(channel, value, sink, False)
        if sink is not None:
            request.ids.append(ioid)
        return request

    def _put_now(self, channel: Channel, value: Any, sink: Sink | None,
                 on_io_thread: bool) -> int:
        if not channel.access & protocol.AccessRights.WRITE:
            raise AccessDeniedError(f"put of {value!r} to {channel.name} refused: the server "
                                    f"{channel.address()} grants no write access",
                                    pv=channel.name, address=channel.address())
        try:
            data_type, count, payload = encode_put(channel.native, channel.count, value,
                                                   channel.enum_strings)
        except ValueError as exc:
            raise ValueError(f"cannot put {value!r} to {channel.name}: {exc}") from None
        ioid, frame = self.write_frame(channel, value, data_type, count, payload, sink)
        self.send(channel, frame, on_io_thread)
        return ioid

    def _put_after_choices(self, request: PendingRequest, channel: Channel, value: str,
                           sink: Sink | None) -> None:
        def failed(error: BaseException) -> None:
            if sink is not None:
                sink(error)
            else:
                self.log.warning("put of %r to %s failed: %s", value, channel.name, error)

        def choices_known(reading: Any) -> None:
            request.ids.clear()  # the read is answered: only the put may still be in flight
            if isinstance(reading, BaseException):
                failed(reading)
                return
            channel.enum_strings = reading.enum_strings
            try:
                ioid = self._put_now(channel, value, sink, True)
            except (PVFlowError, ValueError) as exc:
                failed(exc)
                return
            if sink is not None:
                request.ids.append(ioid)

        request.ids.append(self.read_now(channel, DbrForm.CTRL, choices_known))

    def write_frame(self, channel: Channel, value: Any, data_type: int, count: int,
                    payload: bytes, sink: Callable[[Any], None] | None) -> tuple[int, bytes]:
        circuit = channel.circuit
        if circuit is None:
            raise DisconnectedError(f"{channel.name} is not connected", pv=channel.name)
        payload = protocol.pad_payload(payload)
        if sink is None:
            return 0, protocol.write(data_type, count, channel.sid, 0, payload)
        ioid = self.allocate_ids(1)
        circuit.pending[ioid] = WriteRequest(channel, value, sink)
        return ioid, protocol.write_notify(data_type, count, channel.sid, ioid, payload)

    def cancel(self, channel: Channel, ioid: int) -> bool:
        """Forget a request; False when the I/O thread already took it (its answer is coming)."""
        circuit = channel.circuit
        return circuit is not None and circuit.pending.pop(ioid, None) is not None

    # --- subscriptions ----------------------------------------------------------------------------
    def subscribe(self, channel: Channel, form: Form, mask: int, mailbox: Mailbox,
                  server_queue_size: int = 0, request_text: str | None = None,
                  as_string: bool = False, dtype: str | None = None) -> Subscription:
        """Start a monitor. On a connected channel EVENT_ADD leaves from the caller's thread,
        so it reaches the server before any put the caller makes next (program order).
        ``server_queue_size`` and ``request_text`` are pvAccess's; CA has neither. ``dtype``
        (``uint8``, ``uint16``, ``uint32``) is what the caller knows the field holds: the
        monitor asks for the CA type of that size and reads its bits as unsigned."""
        family = DBR_FORMS[form]
        unsigned = None
        if dtype is not None:
            unsigned = UNSIGNED_REQUEST.get(np.dtype(dtype))
            if unsigned is None:
                raise ValueError(f"{channel.name}: dtype {dtype} is not an unsigned type CA "
                                 f"can carry ({', '.join(map(str, UNSIGNED_REQUEST))})")
        subscription = Subscription(self.allocate_ids(1), channel, family, mask,
                                    family != DbrForm.PLAIN, mailbox, as_string, unsigned)
        with self.lock:
            add_subscription(channel, subscription.subscription_id, subscription)
            connected = channel.state is CONNECTED
        self.wanted_again(channel)
        if connected:
            try:
                self._start_subscription(subscription, on_io_thread=False)
            except DisconnectedError:
                pass  # the I/O thread restarts it when the channel reconnects
        return subscription

    def _start_subscription(self, subscription: Subscription, on_io_thread: bool = True) -> None:
        channel = subscription.channel
        circuit = channel.circuit
        if circuit is None:
            raise DisconnectedError(f"{channel.name} lost its circuit", pv=channel.name)
        native = Native.STRING if subscription.as_string and channel.native is Native.ENUM \
            else channel.native
        unsigned = subscription.unsigned is not None and native not in NOT_NUMBERS
        if unsigned:
            native = subscription.unsigned  # type: ignore[assignment]
        subscription.decoder = decoder(subscription.form + native,
                                       subscription.as_string and native == Native.CHAR,
                                       unsigned)
        circuit.subscriptions[subscription.subscription_id] = subscription
        count = 0 if channel.count != 1 and circuit.server_version >= 13 else channel.count
        subscription.mailbox.post(ConnectionChange(True))
        self.send(channel, protocol.event_add(subscription.form + native, count,
                                              channel.sid, subscription.subscription_id,
                                              subscription.mask), on_io_thread)

    def _remove_subscription(self, subscription: Subscription) -> None:
        channel = subscription.channel
        with self.lock:
            remove_subscription(channel, subscription.subscription_id)
        circuit = channel.circuit
        if circuit is not None and circuit.subscriptions.pop(subscription.subscription_id,
                                                             None) is not None:
            if channel.state is CONNECTED:
                self.send(channel, protocol.event_cancel(subscription.form + channel.native,
                                                         channel.count, channel.sid,
                                                         subscription.subscription_id), True)

    # --- events from the search and the circuits (I/O thread) -------------------------------------
    def _on_search_responses(self, responses: list[protocol.SearchResponse]) -> None:
        """Create the channels the servers have; each circuit sends its creates in one write
        at the end of this pass."""
        create_channel = protocol.create_channel
        for connection, channels in self._found_many(responses).items():
            connection.circuit.queue(b"".join([create_channel(channel.wire_name, channel.cid)
                                               for channel in channels]))
            self.loop.at_end_of_iteration(connection, connection.flush)

    def search_answered(self, circuit: Circuit, response: protocol.SearchResponse) -> None:
        self._on_search_responses([response])

    def channels_created(self, circuit: Circuit, channels: list[Channel]) -> None:
        self._created_many(channels)

    def _restart_subscriptions(self, channel: Channel) -> None:
        for subscription in list(channel.subscriptions.values()):
            self._start_subscription(subscription)

    def _circuit_gone(self, channel: Channel) -> None:
        for subscription in channel.subscriptions.values():
            subscription.decoder = None

    def access_changed(self, circuit: Circuit, channel: Channel) -> None:
        if channel.state is CONNECTED and channel.watchers:
            for watcher in channel.watchers:  # before connection, channel_created reports it
                watcher.post(_access(channel))

    def _send_echo(self, connection: Any) -> None:
        connection.circuit.queue(protocol.echo())
        connection.flush()

    def access_of(self, channel: Channel) -> AccessChange:
        return _access(channel)

    def channel_lost(self, circuit: Circuit, channel: Channel) -> None:
        self._disconnected(channel, research=True)

    # --- liveness (I/O thread) --------------------------------------------------------------------


def _access(channel: Channel) -> AccessChange:
    return AccessChange(bool(channel.access & protocol.AccessRights.READ),
                        bool(channel.access & protocol.AccessRights.WRITE))
