"""Server-side operations of a channel: GET, PUT, MONITOR, RPC, GET_FIELD (transport layer).

Each operation is a small state machine (NEW -> CREATING -> READY) driven by replies on the
I/O thread, plus a request queue callers append to under the channel's lock. GET and PUT keep
one EXEC in flight; requests arriving meanwhile wait and leave together with the next EXEC (a
get issued after an EXEC was sent must see a value at least as new as its own call).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import PutError, PVFlowError
from ..io.delivery import ConnectionChange, Mailbox
from . import protocol, request
from .nt import View, put_values, view_of
from .protocol import Command, Sub, read_status
from .pvdata import (FieldType, empty_leaves, read_partial, read_type, read_type_memo, read_value,
                     write_partial)

if TYPE_CHECKING:
    from .channel import Channel
    from .circuit import Circuit

log = logging.getLogger("pvflow.pva")

NEW, CREATING, READY = 0, 1, 2
Sink = Callable[[Any], None]
Pending = tuple[int, Sink, bool]  # a get's token, where its value goes, and as_string
# a put's token, value, where its answer goes, and its body once encoded
PutPending = tuple[int, Any, "Sink | None", "bytes | None"]
# the pvRequest of a GET, by what the caller wants
VALUE_REQUEST = "field(value)"
TIME_REQUEST = "field(value,alarm,timeStamp)"
FULL_REQUEST = ""


def remote_error(channel: Channel, what: str, status: protocol.Status) -> PVFlowError:
    error_type = PutError if what == "put" else PVFlowError
    return error_type(f"{what} of {channel.name} failed at {channel.address()}: "
                      f"{status.message or 'error status ' + str(status.code)}",
                      pv=channel.name, address=channel.address())


class Operation:
    """What the circuit needs of every operation: its ioid and a reply handler."""

    __slots__ = ()
    command = 0
    ioid = 0

    def on_reply(self, circuit: Circuit, sub: int, buffer: Any, offset: int, order: str,
                 owned: bool) -> None:
        raise NotImplementedError

    def lost(self, error: BaseException) -> None:
        """The circuit closed: fail what waits (or prepare to restart on reconnect)."""


class GetOperation(Operation):
    """A persistent GET with one pvRequest; ``pending`` holds ``(token, sink, as_string)``.

    An idle operation holds no request lists (``()`` for none): at a hundred thousand
    channels every long-lived container is work for each full garbage collection."""

    __slots__ = ("channel", "request_text", "reading", "state", "ioid", "ftype", "view",
                 "leaves", "waiting", "in_flight")
    command = Command.GET

    def __init__(self, channel: Channel, request_text: str, reading: bool):
        self.channel = channel
        self.request_text = request_text
        self.reading = reading
        self.state = NEW
        self.ioid = 0
        self.ftype: FieldType | None = None
        self.view: View | None = None
        self.leaves: list[Any] = []
        self.waiting: list[Pending] | tuple[()] = ()  # for the next EXEC
        self.in_flight: list[Pending] | tuple[()] = ()  # answered by the EXEC in flight

    def request(self, circuit: Circuit, pending: Pending) -> bytes:
        """Queue a read; the frame to send now (EXEC, INIT, or nothing). Channel lock held."""
        if self.state == READY and not self.in_flight:
            self.in_flight = [pending]
            return protocol.operation_exec(Command.GET, self.channel.sid, self.ioid)
        if self.waiting:
            self.waiting.append(pending)
        else:
            self.waiting = [pending]
        if self.state == NEW:
            return self._init(circuit)
        return b""

    def _init(self, circuit: Circuit) -> bytes:
        self.state = CREATING
        self.ioid = circuit.register(self)
        return protocol.operation_init(Command.GET, self.channel.sid, self.ioid,
                                       request.encode(self.request_text))

    def cancel(self, token: int) -> bool:
        for queue in (self.waiting, self.in_flight):
            for index, pending in enumerate(queue):
                if pending[0] == token:
                    del queue[index]  # type: ignore[union-attr]
                    return True
        return False

    def on_reply(self, circuit: Circuit, sub: int, buffer: Any, offset: int, order: str,
                 owned: bool) -> None:
        if buffer[offset] == 0xFF:  # the usual OK status, one byte
            status, offset = None, offset + 1
        else:
            status, offset = read_status(buffer, offset, order)
        channel = self.channel
        if sub & Sub.INIT:
            self._initialised(circuit, status, buffer, offset, order)
            return
        with channel.lock:
            done, self.in_flight, self.waiting = self.in_flight, self.waiting, ()
            if self.in_flight:
                circuit.queue(protocol.operation_exec(Command.GET, channel.sid, self.ioid))
        if status is not None and not status.success:
            error = remote_error(channel, "get", status)
            for _, sink, _ in done:
                sink(error)
            return
        assert self.ftype is not None and self.view is not None
        leaves = self.leaves
        read_partial(self.ftype, buffer, offset, order, circuit.types, leaves, owned)
        view = self.view
        if self.reading:
            for _, sink, as_string in done:
                sink(view.reading(leaves, as_string))
        else:
            for _, sink, as_string in done:
                sink(view.value(leaves, as_string))

    def _initialised(self, circuit: Circuit, status: protocol.Status | None, buffer: Any,
                     offset: int, order: str) -> None:
        channel = self.channel
        if status is not None and not status.success and self.request_text != FULL_REQUEST:
            # p4p refuses a pvRequest selecting no existing field: ask for everything instead
            circuit.unregister(self.ioid)
            with channel.lock:
                self.request_text = FULL_REQUEST
                circuit.queue(self._init(circuit))
            return
        if status is not None and not status.success:
            circuit.unregister(self.ioid)
            with channel.lock:
                self.state = NEW
                failed, self.waiting = self.waiting, ()
            error = remote_error(channel, "get", status)
            for _, sink, _ in failed:
                sink(error)
            return
        ftype, _ = read_type_memo(buffer, offset, order, circuit.types)
        if ftype is None:
            raise PVFlowError(f"{channel.name}: the server described no type for a get")
        view = view_of(ftype)
        if self.request_text != FULL_REQUEST and not view.complete_with_value_only:
            # An image, a table or a plain structure needs more than its value (and alarm and
            # time stamp): ask for everything instead (once per channel and connection).
            circuit.queue(protocol.destroy_request(channel.sid, self.ioid))
            circuit.unregister(self.ioid)
            with channel.lock:
                self.request_text = FULL_REQUEST
                circuit.queue(self._init(circuit))
            return
        if channel.field_type is None:
            channel.field_type = ftype
        with channel.lock:
            self.ftype, self.view, self.leaves = ftype, view, empty_leaves(ftype)
            self.state = READY
            if self.waiting:
                self.in_flight, self.waiting = self.waiting, ()
                circuit.queue(protocol.operation_exec(Command.GET, channel.sid, self.ioid))

    def lost(self, error: BaseException) -> None:
        with self.channel.lock:
            self.state = NEW
            failed = [*self.in_flight, *self.waiting]
            self.in_flight, self.waiting = (), ()
        for _, sink, _ in failed:
            sink(error)


class PutOperation(Operation):
    """A persistent PUT; ``pending`` holds ``(token, value, sink or None)``.

    An enum put by choice string needs the choices, which only a GET of the put's structure
    gives: the operation then asks the server for the current value first (sub-command GET).
    With ``block`` the server answers when the record's processing completes (QSRV's
    ``record[block=true]``, what a put-callback is over CA); without, when the value is written.
    """

    command = Command.PUT

    def __init__(self, channel: Channel, block: bool = False):
        self.channel = channel
        self.block = block
        self.state = NEW
        self.ftype: FieldType | None = None
        self.leaves: list[Any] = []
        self.choices: tuple[str, ...] | None = None
        self.waiting: list[PutPending] = []
        self.in_flight: PutPending | None = None

    def request(self, circuit: Circuit, pending: PutPending) -> bytes:
        self.waiting.append(pending)
        if self.state == NEW:
            self.state = CREATING
            self.ioid = circuit.register(self)
            options = {"block": True} if self.block else {}
            return protocol.operation_init(Command.PUT, self.channel.sid, self.ioid,
                                           request.encode(FULL_REQUEST, **options))
        if self.state == READY and self.in_flight is None:
            return next_puts(self.channel)
        return b""

    def _blocked(self, token: int) -> bool:
        """Another put operation of the channel (the other kind: waiting for processing or
        not) holds a put made before ``token`` and not sent yet: the server must take a
        channel's puts in the order they were made, or an earlier value lands last."""
        return any(other is not self and other.waiting and other.waiting[0][0] < token
                   for other in self.channel.puts.values())

    def encode(self, value: Any) -> bytes | None:
        """The put's body, encoded in the caller's thread when the type is known, which
        refuses there a value the type cannot hold (``ValueError`` and the like); None
        before that: the put's first send encodes it. Channel lock held."""
        if value is None:
            raise ValueError("None is not a value")
        ftype = self.ftype
        if ftype is None or (isinstance(value, str) and self.choices is None):
            return None
        return self._body(value)

    def _body(self, value: Any) -> bytes:
        assert self.ftype is not None
        return write_partial(self.ftype, put_values(self.ftype, value, self.choices or ()))

    def _next(self) -> bytes:
        """The frame for the next waiting put (channel lock held); b"" when none can go."""
        while self.waiting and self.in_flight is None and self.state == READY and \
                not self._blocked(self.waiting[0][0]):
            pending = self.waiting.pop(0)
            token, value, sink, body = pending
            if body is None:
                assert self.ftype is not None
                if isinstance(value, str) and view_of(self.ftype).kind == "enum" and \
                        self.choices is None:
                    self.waiting.insert(0, pending)
                    self.in_flight = (0, None, None, None)  # the GET of the choices
                    return protocol.operation_exec(Command.PUT, self.channel.sid, self.ioid,
                                                   Sub.GET)
                try:
                    body = self._body(value)
                except (ValueError, TypeError, OverflowError, struct.error) as exc:
                    # our encoding failed, not the server: refuse this put alone, keep the
                    # circuit
                    error = ValueError(f"cannot put {value!r} to pva://{self.channel.name}: "
                                       f"{exc}")
                    if sink is not None:
                        sink(error)
                    else:
                        log.error("%s", error)
                    continue
            self.in_flight = pending
            return protocol.operation_exec(Command.PUT, self.channel.sid, self.ioid, Sub.EXEC,
                                           body)
        return b""

    def cancel(self, token: int) -> bool:
        for index, pending in enumerate(self.waiting):
            if pending[0] == token:
                del self.waiting[index]
                return True
        return False

    def on_reply(self, circuit: Circuit, sub: int, buffer: Any, offset: int, order: str,
                 owned: bool) -> None:
        status, offset = read_status(buffer, offset, order)
        channel = self.channel
        failed = status is not None and not status.success
        if sub & Sub.INIT:
            with channel.lock:
                if failed:
                    circuit.unregister(self.ioid)
                    self.state = NEW
                    waiting, self.waiting = self.waiting, []
                    send_puts(circuit, channel)  # the other kind's may wait on these
                else:
                    self.ftype, _ = read_type_memo(buffer, offset, order, circuit.types)
                    if self.ftype is None:
                        raise PVFlowError(f"{channel.name}: the server described no put type")
                    self.leaves = empty_leaves(self.ftype)
                    self.state = READY
                    waiting = []
                    send_puts(circuit, channel)
            for _, _, sink, _ in waiting:
                if sink is not None:
                    sink(remote_error(channel, "put", status))  # type: ignore[arg-type]
            return
        with channel.lock:
            done, self.in_flight = self.in_flight, None
            if sub & Sub.GET and not failed and self.ftype is not None:
                read_partial(self.ftype, buffer, offset, order, circuit.types, self.leaves)
                bit = self.ftype.paths.get("value.choices")
                self.choices = tuple(self.leaves[bit] or ()) if bit is not None else ()
            elif sub & Sub.GET:
                self.choices = ()
            send_puts(circuit, channel)
        if done is not None and not sub & Sub.GET and done[2] is not None:
            done[2](remote_error(channel, "put", status) if failed else None)  # type: ignore

    def lost(self, error: BaseException) -> None:
        with self.channel.lock:
            self.state = NEW
            self.choices = None
            failed = ([self.in_flight] if self.in_flight and self.in_flight[0] else []) + \
                self.waiting
            self.in_flight, self.waiting = None, []
        for _, _, sink, _ in failed:
            if sink is not None:
                sink(error)


def next_puts(channel: Channel) -> bytes:
    """The frames of every put of ``channel`` that may go now, oldest first (channel lock
    held): a put sent, answered or given up on may free one of the other kind."""
    frames = []
    for operation in sorted(channel.puts.values(), key=_first_waiting):
        frames.append(operation._next())
    return b"".join(frames)


def send_puts(circuit: Circuit, channel: Channel) -> None:
    """Send what :func:`next_puts` frees at once (channel lock held, any thread): queued for
    the I/O thread's next flush, it could be overtaken by a put a caller sends itself, and
    the server would take the two out of order."""
    circuit.send_at_once(next_puts(channel))


def _first_waiting(operation: PutOperation) -> int:
    return operation.waiting[0][0] if operation.waiting else 0


class MonitorOperation(Operation):
    """A subscription with pvAccess flow control (``pipeline=true``).

    The window we grant is what our side can hold without loss: the subscription's own queue
    (``mailbox.maxlen``), not the server's ``queueSize``. The server fills its queue of
    ``queue_size`` (squashing the newest update into the last slot when full) only once that
    window is used up; a window as small as that queue lets a burst of a few hundred updates
    squash whenever this process is off the CPU for a few milliseconds. Updates are
    acknowledged once per read pass (see :meth:`Circuit.received`), so credit returns within
    one I/O iteration: pvxs resumes a stalled queue on the next post, not on an
    acknowledgement, so a window that runs dry also holds back the last updates of a burst.
    """

    command = Command.MONITOR

    def __init__(self, token: int, channel: Channel, request_text: str, reading: bool,
                 mailbox: Mailbox, queue_size: int, as_string: bool = False):
        self.token = token
        self.as_string = as_string
        self.channel = channel
        self.request_text = request_text
        self.reading = reading
        self.mailbox = mailbox
        self.queue_size = max(2, queue_size)
        self.window = max(self.queue_size, mailbox.maxlen)
        self.closed = False
        self.ftype: FieldType | None = None
        self.view: View | None = None
        self.leaves: list[Any] = []
        self.unacknowledged = 0

    def start(self, circuit: Circuit) -> bytes:
        self.ioid = circuit.register(self)
        self.unacknowledged = 0
        text = self.request_text
        body = request.encode(text, queueSize=self.queue_size, pipeline=True)
        return protocol.operation_init(Command.MONITOR, self.channel.sid, self.ioid, body,
                                       Sub.INIT | Sub.PIPELINE, self.window)

    def stop(self, circuit: Circuit) -> bytes:
        circuit.unregister(self.ioid)
        return protocol.destroy_request(self.channel.sid, self.ioid)

    def on_reply(self, circuit: Circuit, sub: int, buffer: Any, offset: int, order: str,
                 owned: bool) -> None:
        if self.closed:
            return
        channel = self.channel
        status = None
        if sub & (Sub.INIT | Sub.DESTROY):
            status, offset = read_status(buffer, offset, order)
        if status is not None and not status.success:
            log.warning("%s: monitor refused by %s: %s", channel.name, channel.address(),
                        status.message)
            circuit.unregister(self.ioid)
            self.mailbox.post(remote_error(channel, "monitor", status))
            return
        if sub & Sub.INIT:
            self.ftype, _ = read_type_memo(buffer, offset, order, circuit.types)
            if self.ftype is None:
                raise PVFlowError(f"{channel.name}: the server described no monitor type")
            self.view = view_of(self.ftype)
            self.leaves = empty_leaves(self.ftype)
            self.mailbox.post(ConnectionChange(True))
            circuit.queue(protocol.operation_exec(Command.MONITOR, channel.sid, self.ioid,
                                                  Sub.GET | Sub.START))
            return
        if offset < len(buffer) and self.ftype is not None and self.view is not None:
            _, offset = read_partial(self.ftype, buffer, offset, order, circuit.types,
                                     self.leaves, owned)
            view = self.view
            self.mailbox.post(view.reading(self.leaves, self.as_string) if self.reading
                              else view.value(self.leaves, self.as_string))
            self.unacknowledged += 1
            if self.unacknowledged == 1:
                circuit.acknowledging.append(self)
        if sub & Sub.DESTROY:  # the server finished this subscription
            circuit.unregister(self.ioid)

    def acknowledge(self) -> bytes:
        """The ack of every update taken since the last one (I/O thread, end of a read pass)."""
        count, self.unacknowledged = self.unacknowledged, 0
        if not count or self.closed:
            return b""
        return protocol.monitor_ack(self.channel.sid, self.ioid, count)

    def lost(self, error: BaseException) -> None:
        self.ftype = None


class OneShot(Operation):
    """GET_FIELD or RPC: INIT (RPC only), one EXEC, one answer, then gone."""

    def __init__(self, channel: Channel, command: int, sink: Sink, argument: Any = None,
                 argument_type: FieldType | None = None):
        self.channel = channel
        self.command = command
        self.sink = sink
        self.argument = argument
        self.argument_type = argument_type

    def start(self, circuit: Circuit) -> bytes:
        self.ioid = circuit.register(self)
        if self.command == Command.GET_FIELD:
            return protocol.get_field(self.channel.sid, self.ioid)
        return protocol.operation_init(Command.RPC, self.channel.sid, self.ioid,
                                       request.encode(FULL_REQUEST))

    def on_reply(self, circuit: Circuit, sub: int, buffer: Any, offset: int, order: str,
                 owned: bool) -> None:
        channel = self.channel
        status, offset = read_status(buffer, offset, order)
        if status is not None and not status.success:
            circuit.unregister(self.ioid)
            self.sink(remote_error(channel, "rpc" if self.command == Command.RPC
                                   else "introspection", status))
            return
        if self.command == Command.GET_FIELD:
            circuit.unregister(self.ioid)
            self.sink(read_type_memo(buffer, offset, order, circuit.types)[0])
            return
        if sub & Sub.INIT:
            from .pvdata import write_type, write_value
            body = write_type(self.argument_type) + (
                write_value(self.argument_type, self.argument) if self.argument_type else b"")
            circuit.queue(protocol.operation_exec(Command.RPC, channel.sid, self.ioid, Sub.EXEC,
                                                  body))
            return
        circuit.unregister(self.ioid)
        circuit.queue(protocol.destroy_request(channel.sid, self.ioid))
        ftype, offset = read_type(buffer, offset, order, circuit.types)
        self.sink(None if ftype is None else
                  read_value(ftype, buffer, offset, order, circuit.types, owned)[0])

    def lost(self, error: BaseException) -> None:
        self.sink(error)
