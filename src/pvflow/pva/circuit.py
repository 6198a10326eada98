"""One pvAccess circuit (TCP connection to one server), without the socket (transport layer).

Same shape as the CA circuit: :meth:`Circuit.receive_view` hands out the free part of the one
receive buffer for ``recv_into`` (up to :data:`RECEIVE_CHUNK` at a time),
:meth:`Circuit.received` parses every complete message in one pass and compacts once; payloads
of 64 KiB and more are read into an exact-size buffer of their own, so an image reaches numpy
without a copy. Segmented messages (pvAccessCPP servers split large ones) are joined first.
Each handler gets a memoryview of exactly its payload, so no decoder can read into the next
message.

The circuit also owns the per-connection type cache (0xFD/0xFE entries of type descriptions)
and the operations in flight by ioid. Any malformed input raises :class:`RemoteProtocolError`;
the client then closes this circuit and only this circuit.
"""

from __future__ import annotations

import logging
import struct
import time
from threading import get_ident
from collections.abc import Callable
from typing import Protocol

from ..errors import PVFlowError, RemoteProtocolError, naming_pv
from . import protocol
from ..io.connection import CallerReadBuffer
from ..io.large_payload import LargePayload, PayloadRecycler
from .channel import Channel
from .operations import MonitorOperation, Operation
from .protocol import HEADER, HEADER_SIZE, MAGIC, Command, Flag, Sub, read_status
from .pvdata import TypeCache

log = logging.getLogger("pvflow.pva")

RECEIVE_BUFFER_SIZE = 256 * 1024
LARGE_PAYLOAD = 64 * 1024
# At most this much is read and handled per loop iteration: the requests the replies call for
# (a GET's INIT after its channel is created, its EXEC after the INIT) leave at the end of each
# iteration, so a server that has answered a burst gets work back after a few thousand replies
# rather than after all of them.
RECEIVE_CHUNK = 32 * 1024
MAX_PAYLOAD = 1 << 31
_unpack_header = HEADER.unpack_from
# what a caller may take as its own answer (take_reply): a plain little-endian GET or PUT
# EXEC answer
_TAKEN = (int(Command.GET), int(Command.PUT))
_NOT_PLAIN = Flag.CONTROL | Flag.SEGMENT_MASK | Flag.BIG_ENDIAN
_NOT_EXEC = Sub.INIT | Sub.DESTROY
_IOID_SUB = {"<": struct.Struct("<IB"), ">": struct.Struct(">IB")}
_IDS = {"<": struct.Struct("<II"), ">": struct.Struct(">II")}
_OPERATION_COMMANDS = frozenset((Command.GET, Command.PUT, Command.MONITOR, Command.RPC,
                                 Command.GET_FIELD))


class CircuitListener(Protocol):
    def circuit_ready(self, circuit: Circuit) -> None: ...

    def channel_created(self, circuit: Circuit, channel: Channel, sid: int) -> None: ...

    def channel_failed(self, circuit: Circuit, channel: Channel, reason: str) -> None: ...

    def channel_lost(self, circuit: Circuit, channel: Channel) -> None: ...

    def search_answered(self, circuit: Circuit, response: protocol.SearchResponse) -> None: ...


class Circuit(CallerReadBuffer):
    """Protocol state of one circuit: handshake, channels, operations, type cache, buffers."""

    def __init__(self, host: str, port: int, listener: CircuitListener,
                 send: Callable[[bytes], None], flush_soon: Callable[[], None],
                 allocate_ids: Callable[[int], int], user: str, host_name: str):
        self.host = host
        self.port = port
        self.address_text = f"{host}:{port}"
        self.listener = listener
        self.send_now = send  # thread-safe in the client: caller threads use it directly
        self.flush_soon = flush_soon
        self.allocate_ids = allocate_ids
        self.user = user
        self.host_name = host_name
        self.ready = False
        self.closed = False
        self.types: TypeCache = {}
        self.operations: dict[int, Operation] = {}
        self.channels: dict[int, Channel] = {}  # by cid, while creating and once created
        self.by_sid: dict[int, Channel] = {}
        self.last_received = time.monotonic()
        self.output: list[bytes] = []
        self.acknowledging: list[MonitorOperation] = []  # monitors with updates to ack
        self._buffer = bytearray(RECEIVE_BUFFER_SIZE)
        self._view = memoryview(self._buffer)
        self._filled = 0
        self._large: LargePayload | None = None
        self._recycler = PayloadRecycler()
        self._segments: list[bytes] = []
        self._dispatching = 0  # the caller's thread handling its answer (take_reply)

    # --- operations and output ------------------------------------------------------------------
    def register(self, operation: Operation) -> int:
        ioid = self.allocate_ids(1)
        self.operations[ioid] = operation
        return ioid

    def unregister(self, ioid: int) -> None:
        self.operations.pop(ioid, None)

    def queue(self, frame: bytes) -> None:
        """Queue a frame on the I/O thread; sent with the others at the end of the iteration
        (from a caller handling its own answer, sent at once: no iteration will flush it)."""
        if self._dispatching == get_ident():
            self.send_at_once(frame)
        elif frame:
            self.output.append(frame)
            self.flush_soon()

    def send_at_once(self, frame: bytes) -> None:
        """Send ``frame`` now, from any thread."""
        if frame:
            try:
                self.send_now(frame)
            except PVFlowError:
                pass  # the socket is gone: the I/O thread finds so and fails what waits

    def take_output(self) -> bytes:
        frames, self.output = self.output, []
        return b"".join(frames)

    # --- input ------------------------------------------------------------------------------------
    def receive_view(self) -> memoryview:
        if self._large is not None:
            return self._large.free()
        if self._filled == len(self._buffer):  # a message bigger than the buffer, segmented
            self._view.release()
            self._buffer.extend(bytes(len(self._buffer)))
            self._view = memoryview(self._buffer)
        return self._view[self._filled:self._filled + RECEIVE_CHUNK]

    def received(self, count: int) -> None:
        self.last_received = time.monotonic()
        try:
            if self._large is not None:
                if self._large.received(count):
                    self._finish_large()
            else:
                self._filled += count
                self._parse()
        except RemoteProtocolError:
            raise
        except Exception as exc:  # struct.error, IndexError, UnicodeDecodeError, ...
            raise RemoteProtocolError(f"{self.address_text} sent a malformed message: "
                                      f"{type(exc).__name__}: {exc}",
                                      address=self.address_text) from None
        if self.acknowledging:
            self._acknowledge()

    # --- a caller reading its own answer (io.connection.Connection.read_reply) -----------------
    def take_reply(self, ioid: int) -> bool | None:
        """The caller's thread, holding the reader: handle the answer to an EXEC of GET or
        PUT operation ``ioid`` if it comes first in the buffer, whole (True); None while it
        has not all come; False when anything else comes first (an INIT's answer, a monitor
        update, a control or segmented message), left with the rest to the I/O thread."""
        if self._large is not None or self.closed:
            return False
        end = self._filled
        if end < HEADER_SIZE:
            return None
        buffer = self._buffer
        magic, _, flags, command, size = _unpack_header(buffer, 0)
        if magic != MAGIC or command not in _TAKEN or size < 5 or size >= LARGE_PAYLOAD or \
                flags & _NOT_PLAIN:
            return False
        stop = HEADER_SIZE + size
        if stop > end:
            return None
        answered, sub = _IOID_SUB["<"].unpack_from(buffer, HEADER_SIZE)
        if answered != ioid or sub & _NOT_EXEC:
            return False
        self._dispatching = get_ident()
        try:
            self._message(command, flags, "<", self._view[HEADER_SIZE:stop], False)
        except PVFlowError:
            raise
        except Exception as exc:  # struct.error, IndexError, ...: as received() says it
            raise RemoteProtocolError(f"{self.address_text} sent a malformed message: "
                                      f"{type(exc).__name__}: {exc}",
                                      address=self.address_text) from None
        finally:  # taken even when malformed: the I/O thread must not handle it a second time
            self._dispatching = 0
            remaining = end - stop
            if remaining:
                buffer[:remaining] = buffer[stop:end]
            self._filled = remaining
        return True

    def _acknowledge(self) -> None:
        """One ack per monitor per read pass: the server's window is refilled as soon as we
        have taken its updates off the wire, before it can run dry under a burst."""
        operations, self.acknowledging = self.acknowledging, []
        for operation in operations:
            self.queue(operation.acknowledge())

    def _parse(self) -> None:
        buffer = self._buffer
        view = self._view
        offset, end = 0, self._filled
        try:
            while end - offset >= HEADER_SIZE:
                magic, _, flags, command, size = _unpack_header(buffer, offset)
                if magic != MAGIC:
                    raise RemoteProtocolError(f"{self.address_text} sent a header starting "
                                              f"0x{magic:02x}", address=self.address_text)
                start = offset + HEADER_SIZE
                if flags & Flag.CONTROL:
                    self._control(command, size)
                    offset = start
                    continue
                order = "<"
                if flags & Flag.BIG_ENDIAN:
                    order = ">"
                    size = int.from_bytes(size.to_bytes(4, "little"), "big")
                stop = start + size
                if stop > end:
                    if size > MAX_PAYLOAD:
                        raise RemoteProtocolError(f"{self.address_text} announced a {size}-byte "
                                                  "message", address=self.address_text)
                    if size >= LARGE_PAYLOAD and not flags & Flag.SEGMENT_MASK:
                        self._start_large(command, flags, order, start, end, size)
                        offset = end
                    break
                self._message(command, flags, order, view[start:stop], False)
                offset = stop
        finally:
            if offset:
                remaining = end - offset
                if remaining:
                    buffer[:remaining] = buffer[offset:end]
                self._filled = remaining

    def _start_large(self, command: int, flags: int, order: str, start: int, end: int,
                     size: int) -> None:
        self._large = LargePayload((command, flags, order), size, self._view[start:end],
                                   self._recycler)

    def _finish_large(self) -> None:
        assert self._large is not None
        command, flags, order = self._large.header
        payload = self._large.take()
        self._large = None
        self._message(command, flags, order, payload.data, True)

    def _message(self, command: int, flags: int, order: str, payload: memoryview,
                 owned: bool) -> None:
        segment = flags & Flag.SEGMENT_MASK
        if segment:
            # first, middle, last: join the parts, then handle the whole as one message
            if segment == Flag.SEGMENT_FIRST:
                self._segments = []
            self._segments.append(bytes(payload))
            if segment != Flag.SEGMENT_LAST:
                return
            payload, owned = memoryview(bytearray(b"".join(self._segments))), True
            self._segments = []
        if command in _OPERATION_COMMANDS:
            if command == Command.GET_FIELD:
                ioid, sub = _IOID_SUB[order].unpack_from(payload, 0)[0], 0
                offset = 4
            else:
                ioid, sub = _IOID_SUB[order].unpack_from(payload, 0)
                offset = 5
            operation = self.operations.get(ioid)
            if operation is None:
                return  # answered after its caller gave up, or a stale monitor update
            if operation.command != command:
                raise RemoteProtocolError(f"{self.address_text} answered ioid {ioid} with "
                                          f"command {command}", address=self.address_text)
            operation.on_reply(self, sub, payload, offset, order, owned)
            return
        handler = _HANDLERS.get(command)
        if handler is not None:
            handler(self, payload, order)

    def _control(self, command: int, value: int) -> None:
        # SET_BYTE_ORDER comes first from every server; we read each header's own flag
        # instead. Markers and control-level echoes need no answer from a client.
        return

    # --- handlers -----------------------------------------------------------------------------------
    def _on_validation(self, payload: memoryview, order: str) -> None:
        offset = 6  # server receive buffer size, introspection registry size: unused
        count, offset = protocol.read_size(payload, offset, order)
        methods = []
        for _ in range(max(count, 0)):
            method, offset = protocol.read_string(payload, offset, order)
            methods.append(method)
        self.send_frame(protocol.validation_reply(self.user, self.host_name, methods))

    def send_frame(self, frame: bytes) -> None:
        self.queue(frame)

    def _on_validated(self, payload: memoryview, order: str) -> None:
        status, _ = read_status(payload, 0, order)
        if status is not None and not status.success:
            # pvxs goes on without credentials too; the server decides per channel
            log.warning("%s refused our credentials: %s", self.address_text, status.message)
        self.ready = True
        self.listener.circuit_ready(self)

    def _on_create_channel(self, payload: memoryview, order: str) -> None:
        cid, sid = _IDS[order].unpack_from(payload, 0)
        status = None if payload[8] == 0xFF else read_status(payload, 8, order)[0]
        channel = self.channels.get(cid)
        if channel is None:
            return
        if status is not None and not status.success:
            del self.channels[cid]
            self.listener.channel_failed(self, channel, status.message)
            return
        self.by_sid[sid] = channel
        self.listener.channel_created(self, channel, sid)

    def _on_destroy_channel(self, payload: memoryview, order: str) -> None:
        sid, cid = _IDS[order].unpack_from(payload, 0)
        channel = self.by_sid.pop(sid, None)
        if channel is not None:
            self.channels.pop(channel.cid, None)
            self.listener.channel_lost(self, channel)

    def _on_message(self, payload: memoryview, order: str) -> None:
        ioid, kind = _IOID_SUB[order].unpack_from(payload, 0)
        text, _ = protocol.read_string(payload, 5, order)
        operation = self.operations.get(ioid)
        name = getattr(getattr(operation, "channel", None), "name", "?")
        log.log(logging.INFO if kind == 0 else logging.WARNING, "%s (%s): %s", name,
                self.address_text, text)

    def _on_search_response(self, payload: memoryview, order: str) -> None:
        # name servers (EPICS_PVA_NAME_SERVERS) answer searches on the circuit itself
        response, _ = protocol.read_search_response(payload, 0, order, self.host)
        self.listener.search_answered(self, response)

    # --- teardown -------------------------------------------------------------------------------------
    def close(self, error: BaseException) -> list[Channel]:
        """Fail or reset every operation; return the channels that were on this circuit."""
        self.closed = True
        operations, self.operations = self.operations, {}
        for operation in operations.values():
            channel = getattr(operation, "channel", None)
            try:
                operation.lost(error if channel is None else
                               naming_pv(error, channel.name, self.address_text))
            except PVFlowError:
                pass
        channels = list(self.channels.values())
        self.channels.clear()
        self.by_sid.clear()
        if self._large is not None:
            self._large.release()
            self._large = None
        self._buffer = bytearray()
        self._view = memoryview(self._buffer)
        self._filled = 0
        return channels


_HANDLERS: dict[int, Callable[[Circuit, memoryview, str], None]] = {
    Command.CONNECTION_VALIDATION: Circuit._on_validation,
    Command.CONNECTION_VALIDATED: Circuit._on_validated,
    Command.CREATE_CHANNEL: Circuit._on_create_channel,
    Command.DESTROY_CHANNEL: Circuit._on_destroy_channel,
    Command.MESSAGE: Circuit._on_message,
    Command.SEARCH_RESPONSE: Circuit._on_search_response,
}
