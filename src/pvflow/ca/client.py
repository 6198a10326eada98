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

import getpass
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import (AccessDeniedError, DisconnectedError, PVFlowError, PVTimeoutError,
                      RemoteProtocolError, naming_pv, no_answer)
from ..io.connection import Connection as SocketConnection
from ..io.contract import BulkRequest, ChannelInfo, Form, Sink, Slots
from ..io.delivery import AccessChange, ConnectionChange, Dispatcher, Mailbox
from ..io.engine import EngineBase
from ..io.loop import READ, IOLoop
from ..io.requests import ANSWERED, Answered, BulkRequests, PendingRequest
from . import protocol
from .channel import Channel, ChannelState, ReadRequest, Subscription, WriteRequest
from .circuit import Circuit
from .config import CAConfig
from .dbr import DECODERS, NATIVES, Native, decoder, encode_put
from .dbr import Form as DbrForm
from .reads import DBR_FORMS, BlockPlan, DeferredReads, JoinedReading, JoinedSlots
from .search import NameSearch

log = logging.getLogger("pvflow.ca")

Action = Callable[[Channel, bool], None]  # (channel, on_io_thread)


class Connection(SocketConnection[Circuit]):
    """A Channel Access circuit on a TCP connection; the handshake goes first."""

    client: CAClient

    def _make_circuit(self, host: str, port: int) -> Circuit:
        circuit = Circuit(host, port, self.client, self.send, self.client.config.max_payload)
        circuit.handshake(socket.gethostname(), self.client.user_name)
        return circuit


class CAClient(EngineBase[Channel]):
    """Channel Access for one Context."""

    def __init__(self, config: CAConfig, loop: IOLoop, dispatcher: Dispatcher):
        super().__init__(loop, Channel, self._begin_search, 0xFFFFFFFF,
                         config.connection_timeout)
        self.config = config
        self.dispatcher = dispatcher
        self.user_name = _user_name()
        self.topology = 0  # bumped whenever any channel connects, disconnects or is released
        ready = threading.Event()
        loop.call_soon(self._start, ready)
        if not ready.wait(10):
            raise PVFlowError("the pvflow I/O thread did not start")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None, loop: IOLoop,
                 dispatcher: Dispatcher) -> CAClient:
        """The engine a Context makes for its scheme (``env`` replaces ``os.environ``)."""
        return cls(CAConfig.from_env(env), loop, dispatcher)

    # --- setup and teardown (I/O thread) ---------------------------------------------------------
    def _start(self, ready: threading.Event) -> None:
        try:
            self._search = NameSearch(self.config.addresses, self.config.repeater_port,
                                      self._on_search_response, self.loop.call_later)
            self.loop.register(self._search.socket, READ, self._search.on_readable)
            self._search.register_with_repeater()
            for address in self.config.name_servers:
                self._open_name_server(address)
            self._schedule_liveness()
        finally:
            ready.set()

    def _open_name_server(self, address: tuple[str, int]) -> None:
        """A TCP circuit to a name server (EPICS_CA_NAME_SERVERS), asked for every channel
        still searching; reopened a second after it drops, as long as the Context lives."""
        if self.closed:
            return
        try:
            connection = Connection(self, *address)
        except OSError as exc:
            log.warning("name server %s:%s: %s", *address, exc)
            self.loop.call_later(1.0, lambda: self._open_name_server(address))
            return
        self._name_server_connections.append(connection)
        for channel in self.by_cid.values():
            if channel.state is ChannelState.SEARCHING:
                connection.circuit.queue(protocol.search(channel.wire_name, channel.cid))

    # --- channels ---------------------------------------------------------------------------------
    def _begin_search(self, channels: list[Channel]) -> None:
        self._search_again([channel for channel in channels
                            if channel.state is ChannelState.SEARCHING])

    def _search_again(self, channels: list[Channel]) -> None:
        if self._search is None or not channels:
            return
        self._search.schedule.add_many(channels)
        for connection in self._name_server_connections:
            for channel in channels:
                connection.circuit.queue(protocol.search(channel.wire_name, channel.cid))
            self.loop.at_end_of_iteration(connection, connection.flush)

    def _clear_channels(self, channels: list[Channel]) -> None:
        for channel in channels:
            with self.lock:
                circuit, connected = channel.circuit, channel.state is ChannelState.CONNECTED
                channel.state = ChannelState.CLOSED
                channel.circuit = None
                channel.on_connect.clear()
                self.topology += 1
            if self._search is not None:
                self._search.schedule.remove(channel.cid)
            if circuit is None:
                continue
            circuit.channels.pop(channel.cid, None)
            for subscription_id in channel.subscriptions:
                circuit.subscriptions.pop(subscription_id, None)
            connection = self._connections.get((circuit.host, circuit.port))
            if connected and connection is not None:
                circuit.queue(protocol.clear_channel(channel.sid, channel.cid))
                self.loop.at_end_of_iteration(connection, connection.flush)

    def _resume_search(self, channel: Channel) -> None:
        if channel.state is ChannelState.FAILED:
            with self.lock:
                channel.state = ChannelState.SEARCHING
            self._search_again([channel])

    # --- requests (any thread) --------------------------------------------------------------------
    def start_read(self, channel: Channel, form: Form, sink: Sink, as_string: bool,
                   count: int | None) -> PendingRequest:
        request = PendingRequest(self, channel)
        if form is not Form.CONTROL and channel.state is ChannelState.CONNECTED:
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
        sink(ChannelInfo(channel.name, channel.address(), channel.native.name, channel.count,
                         bool(channel.access & protocol.AccessRights.READ),
                         bool(channel.access & protocol.AccessRights.WRITE),
                         channel.state.value))
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
        connected_state = ChannelState.CONNECTED
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
        ready: list[Channel] = []
        ready_slots: list[int] = []
        with self.lock:
            for channel, slot in zip(channels, slots):
                if channel.state is connected_state:
                    ready.append(channel)
                    ready_slots.append(slot)
                else:
                    deferred.slots[channel] = slot
                    channel.on_connect.append(deferred.on_connect)
                    self.wanted_again(channel)
        groups: dict[Circuit | None, tuple[list[Channel], list[int]]] = {}
        for channel, slot in zip(ready, ready_slots):
            group = groups.setdefault(channel.circuit, ([], []))
            group[0].append(channel)
            group[1].append(slot)
        for group_channels, group_slots in groups.values():
            deferred.read_group(group_channels, group_slots, on_io_thread=False)
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
                log.warning("put of %r to %s failed: %s", value, channel.name, error)

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

    def send(self, channel: Channel, frame: bytes, on_io_thread: bool) -> None:
        """Send now from a caller thread; queue for the end-of-iteration flush on the I/O one."""
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

    def cancel(self, channel: Channel, ioid: int) -> bool:
        """Forget a request; False when the I/O thread already took it (its answer is coming)."""
        circuit = channel.circuit
        return circuit is not None and circuit.pending.pop(ioid, None) is not None

    def timeout_error(self, channel: Channel, what: str, timeout: float | None) -> PVTimeoutError:
        if channel.state is ChannelState.CONNECTED:
            return no_answer(what, channel.name, channel.name, channel.address(), timeout)
        return PVTimeoutError(f"{channel.name} did not connect within {timeout} s "
                              f"({self._search_hint(channel)})", pv=channel.name)

    def _search_hint(self, channel: Channel) -> str:
        failure = channel.failure
        if channel.state is ChannelState.FAILED and failure is not None:
            wait = max(0.0, failure.retry_at - time.monotonic())
            return f"{failure.reason}; searched again when asked, {wait:.0f} s from now at " \
                   f"the earliest"
        if failure is not None:
            return f"{channel.state.value} again after {failure.reason}"
        if channel.state is ChannelState.SEARCHING:
            targets = ", ".join(f"{h}:{p}" for h, p in self.config.addresses) or "no address"
            return f"no server answered the search to {targets}"
        return f"{channel.state.value} to {channel.address()}"

    # --- subscriptions ----------------------------------------------------------------------------
    def subscribe(self, channel: Channel, form: Form, mask: int, mailbox: Mailbox,
                  server_queue_size: int = 0, request_text: str | None = None,
                  as_string: bool = False) -> Subscription:
        """Start a monitor. On a connected channel EVENT_ADD leaves from the caller's thread,
        so it reaches the server before any put the caller makes next (program order).
        ``server_queue_size`` and ``request_text`` are pvAccess's; CA has neither."""
        family = DBR_FORMS[form]
        subscription = Subscription(self.allocate_ids(1), channel, family, mask,
                                    family != DbrForm.PLAIN, mailbox, as_string)
        with self.lock:
            channel.subscriptions[subscription.subscription_id] = subscription
            connected = channel.state is ChannelState.CONNECTED
        self.wanted_again(channel)
        if connected:
            try:
                self._start_subscription(subscription, on_io_thread=False)
            except DisconnectedError:
                pass  # the I/O thread restarts it when the channel reconnects
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.mailbox.close()
        subscription.closed = True
        self.loop.call_soon(self._remove_subscription, subscription)

    def _start_subscription(self, subscription: Subscription, on_io_thread: bool = True) -> None:
        channel = subscription.channel
        circuit = channel.circuit
        if circuit is None:
            raise DisconnectedError(f"{channel.name} lost its circuit", pv=channel.name)
        native = Native.STRING if subscription.as_string and channel.native is Native.ENUM \
            else channel.native
        subscription.decoder = decoder(subscription.form + native,
                                       subscription.as_string and native == Native.CHAR)
        circuit.subscriptions[subscription.subscription_id] = subscription
        count = 0 if channel.count != 1 and circuit.server_version >= 13 else channel.count
        subscription.mailbox.post(ConnectionChange(True))
        self.send(channel, protocol.event_add(subscription.form + native, count,
                                              channel.sid, subscription.subscription_id,
                                              subscription.mask), on_io_thread)

    def _remove_subscription(self, subscription: Subscription) -> None:
        channel = subscription.channel
        channel.subscriptions.pop(subscription.subscription_id, None)
        circuit = channel.circuit
        if circuit is not None and circuit.subscriptions.pop(subscription.subscription_id,
                                                             None) is not None:
            if channel.state is ChannelState.CONNECTED:
                self.send(channel, protocol.event_cancel(subscription.form + channel.native,
                                                         channel.count, channel.sid,
                                                         subscription.subscription_id), True)

    # --- events from the search and the circuits (I/O thread) -------------------------------------
    def _on_search_response(self, response: protocol.SearchResponse) -> None:
        channel = self.by_cid.get(response.cid)
        if channel is None or channel.state is not ChannelState.SEARCHING:
            return  # a second server answered, or an answer to a search we dropped
        assert self._search is not None
        self._search.schedule.answered(channel.cid)
        key = (response.host, response.port)
        connection = self._connections.get(key)
        if connection is None:
            try:
                connection = self._connections[key] = Connection(self, *key)
            except OSError as exc:
                log.warning("%s: cannot open a circuit to %s:%s: %s", channel.name, *key, exc)
                self._search.schedule.add(channel)
                return
        channel.state = ChannelState.CONNECTING
        channel.circuit = connection.circuit
        connection.circuit.channels[channel.cid] = channel
        connection.circuit.queue(protocol.create_channel(channel.wire_name, channel.cid))
        self.loop.at_end_of_iteration(connection, connection.flush)

    def search_answered(self, circuit: Circuit, response: protocol.SearchResponse) -> None:
        self._on_search_response(response)

    def channel_created(self, circuit: Circuit, channel: Channel, native: int, count: int,
                        sid: int) -> None:
        enum_changed = channel.native != native
        channel.native = NATIVES[native]
        channel.count = count
        channel.sid = sid
        channel.failure = None
        if enum_changed:
            channel.enum_strings = ()
        with self.lock:
            channel.state = ChannelState.CONNECTED
            self.topology += 1
            actions, channel.on_connect = channel.on_connect, []
            self._post_connection(channel, True)
        if channel.subscriptions:
            for subscription in list(channel.subscriptions.values()):
                self._start_subscription(subscription)
        for action in actions:
            try:
                action(channel, True)
            except PVFlowError as exc:
                log.debug("%s: deferred request failed: %s", channel.name, exc)

    def access_changed(self, circuit: Circuit, channel: Channel) -> None:
        if channel.state is ChannelState.CONNECTED and channel.watchers:
            for watcher in channel.watchers:  # before connection, channel_created reports it
                watcher.post(_access(channel))

    @staticmethod
    def _post_connection(channel: Channel, connected: bool) -> None:
        """Tell the channel's watchers (if any: most channels have none)."""
        if channel.watchers:
            items = (ConnectionChange(True), _access(channel)) if connected else (
                ConnectionChange(False),)
            for watcher in channel.watchers:
                for item in items:
                    watcher.post(item)

    def _send_echo(self, connection: Any) -> None:
        connection.circuit.queue(protocol.echo())
        connection.flush()

    def access_of(self, channel: Channel) -> AccessChange:
        return _access(channel)

    def channel_failed(self, circuit: Circuit, channel: Channel, reason: str) -> None:
        """The server refused the channel (or gave one we cannot use): searching again at
        once would ask the same server the same question in a loop, so the channel waits
        until somebody asks for it and its back-off has passed."""
        log.warning("%s: channel creation failed at %s: %s", channel.name, circuit.address_text,
                    reason)
        was_connected = channel.state is ChannelState.CONNECTED
        with self.lock:
            channel.state = ChannelState.FAILED
            channel.circuit = None
            self.topology += 1
        if was_connected:
            self._post_connection(channel, False)
        self.record_failure(channel, f"{circuit.address_text}: {reason}")

    def channel_lost(self, circuit: Circuit, channel: Channel) -> None:
        self._disconnected(channel, research=True)

    def close_connection(self, connection: Connection, error: BaseException,
                         research: bool = True) -> None:
        if connection.circuit.closed:
            return
        if isinstance(error, RemoteProtocolError):
            log.error("closing circuit to %s: %s", connection.circuit.address_text, error)
        elif research:
            log.info("circuit to %s lost: %s", connection.circuit.address_text, error)
        if self._connections.get(connection.key) is connection:
            del self._connections[connection.key]
        if connection in self._name_server_connections:
            self._name_server_connections.remove(connection)
            if research:
                self.loop.call_later(1.0, lambda: self._open_name_server(connection.key))
        lost = DisconnectedError(f"circuit to {connection.circuit.address_text} closed: {error}",
                                 address=connection.circuit.address_text)
        channels = connection.circuit.close(lost)
        connection.close()
        for channel in channels:
            self._disconnected(channel, research)

    def _disconnected(self, channel: Channel, research: bool) -> None:
        was_connected = channel.state is ChannelState.CONNECTED
        with self.lock:
            channel.state = ChannelState.SEARCHING if research else ChannelState.CLOSED
            channel.circuit = None
            self.topology += 1
        if was_connected:
            self._post_connection(channel, False)
            for subscription in channel.subscriptions.values():
                subscription.decoder = None
                subscription.mailbox.post(ConnectionChange(False))
        if research:
            self._search_again([channel])

    # --- liveness (I/O thread) --------------------------------------------------------------------


def _access(channel: Channel) -> AccessChange:
    return AccessChange(bool(channel.access & protocol.AccessRights.READ),
                        bool(channel.access & protocol.AccessRights.WRITE))


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "pvflow"
