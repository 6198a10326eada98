"""One CA virtual circuit (TCP connection to one server), without the socket (transport layer).

The socket lives in the client; a circuit only sees bytes. :meth:`Circuit.receive_view` hands
out the free part of its one receive buffer for ``recv_into``; :meth:`Circuit.received` parses
every complete message in one pass and compacts once (caproto re-slices the remaining buffer
per message, which turns a monitor backlog quadratic). Payloads of 64 KiB and more get a
buffer of their own and are read straight into it, so a big waveform is copied by the kernel
only and handed to numpy as is. That buffer grows as the bytes arrive, never on a header's
word alone (see :mod:`pvflow.io.large_payload`).

Any malformed input raises :class:`RemoteProtocolError`; the client then closes this circuit
and only this circuit.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..errors import AccessDeniedError, PVFlowError, RemoteProtocolError, naming_pv
from . import protocol
from ..io.connection import CallerReadBuffer
from ..io.large_payload import LargePayload, PayloadRecycler
from .channel import BulkRead, Channel, ReadRequest, Subscription, WriteRequest
from .protocol import (EXTENDED_HEADER_SIZE, EXTENDED_SIZES, HEADER, HEADER_SIZE, Command,
                       read_header)

log = logging.getLogger("pvflow.ca")

RECEIVE_BUFFER_SIZE = 256 * 1024
LARGE_PAYLOAD = 64 * 1024  # at or above: own buffer, zero-copy to numpy
LAST_COMMAND = max(Command)  # beyond: not Channel Access (garbage, or another protocol)
_unpack_header = HEADER.unpack_from
_unpack_extended = EXTENDED_SIZES.unpack_from


class CircuitListener(Protocol):
    """What a circuit reports to the engine that owns channels and sockets."""

    def channels_created(self, circuit: Circuit, channels: list[Channel]) -> None: ...

    def channel_failed(self, circuit: Circuit, channel: Channel, reason: str) -> None: ...

    def channel_lost(self, circuit: Circuit, channel: Channel) -> None: ...

    def access_changed(self, circuit: Circuit, channel: Channel) -> None: ...

    def search_answered(self, circuit: Circuit, response: protocol.SearchResponse) -> None: ...


class Circuit(CallerReadBuffer):
    """Protocol state of one circuit: requests in flight, channels, subscriptions, buffers."""

    def __init__(self, host: str, port: int, listener: CircuitListener,
                 send: Callable[[bytes], None], max_payload: int):
        self.host = host
        self.port = port
        self.address_text = f"{host}:{port}"
        self.listener = listener
        self.send_now = send  # thread-safe in the client: used by caller threads directly
        self.max_payload = max_payload
        self.pending: dict[int, ReadRequest | BulkRead | WriteRequest] = {}
        self.channels: dict[int, Channel] = {}
        self.subscriptions: dict[int, Subscription] = {}
        self.server_version = 0
        self.closed = False
        self.last_received = time.monotonic()
        self.output: list[bytes] = []
        self._buffer = bytearray(RECEIVE_BUFFER_SIZE)
        self._view = memoryview(self._buffer)
        self._filled = 0
        self._large: LargePayload | None = None
        self._recycler = PayloadRecycler()
        self._skip = 0  # bytes of a refused oversized payload still to read and drop
        self._handlers: dict[int, Callable[..., None]] = {
            Command.READ_NOTIFY: self._on_read_notify,
            Command.EVENT_ADD: self._on_event_add,
            Command.WRITE_NOTIFY: self._on_write_notify,
            Command.VERSION: self._on_version,
            Command.CREATE_CH_FAIL: self._on_create_channel_failed,
            Command.SERVER_DISCONN: self._on_server_disconnect,
            Command.ERROR: self._on_error,
            Command.SEARCH: self._on_search,
        }

    # --- output --------------------------------------------------------------------------------
    def queue(self, frame: bytes) -> None:
        """Queue a frame on the I/O thread; the client sends all queued frames in one write."""
        self.output.append(frame)

    def take_output(self) -> bytes:
        frames, self.output = self.output, []
        return b"".join(frames)

    def handshake(self, host_name: str, user_name: str) -> None:
        self.queue(protocol.version() + protocol.host_name(host_name)
                   + protocol.client_name(user_name))

    # --- input ---------------------------------------------------------------------------------
    def receive_view(self) -> memoryview:
        if self.closed:
            return self._view[:0]
        if self._large is not None:
            return self._large.free()
        if self._skip:
            return self._view[:self._skip]
        return self._view[self._filled:]

    def received(self, count: int) -> None:
        self.last_received = time.monotonic()
        if self._large is not None:
            if self._large.received(count):
                self._finish_large()
            return
        if self._skip:
            self._skip -= count
            return
        self._filled += count
        try:
            self._parse()
        except (ValueError, IndexError, KeyError, struct.error) as exc:
            raise RemoteProtocolError(f"{self.address_text} sent a malformed message: {exc}",
                                      address=self.address_text) from exc

    # --- a caller reading its own answer (io.connection.Connection.read_reply) -----------------
    def take_reply(self, ioid: int) -> bool | None:
        """The caller's thread, holding the reader: answer request ``ioid`` if its whole reply
        comes first in the buffer (True); None while it has not all come; False when
        something else comes first, left with the rest to the I/O thread's parse."""
        if self._large is not None or self._skip or self.closed:
            return False
        end = self._filled
        if end < HEADER_SIZE:
            return None
        command, size, data_type, count, p1, p2 = _unpack_header(self._buffer, 0)
        if p2 != ioid or command not in (Command.READ_NOTIFY, Command.WRITE_NOTIFY) or \
                (size == 0xFFFF and count == 0) or size >= min(LARGE_PAYLOAD, self.max_payload):
            return False
        stop = HEADER_SIZE + size
        if stop > end:
            return None
        self._handlers[command](data_type, count, p1, p2, self._buffer, HEADER_SIZE, stop, False)
        remaining = end - stop
        if remaining:
            self._buffer[:remaining] = self._buffer[stop:end]
        self._filled = remaining
        return True

    def _parse(self) -> None:
        # Header parsing is inlined (not protocol.read_header) and READ_NOTIFY / EVENT_ADD are
        # handled in the loop: they are nearly every message, and a call per message is ~20%
        # of the per-reply cost of a bulk get.
        buffer = self._buffer
        handlers = self._handlers
        pending_pop = self.pending.pop
        subscriptions = self.subscriptions
        channels_get = self.channels.get
        unpack = _unpack_header
        offset, end = 0, self._filled
        # A fresh connect answers thousands of creates in a burst: they reach the listener
        # as one batch per pass (one lock, one hand-over), flushed before any other kind of
        # message so that, say, a disconnect still follows the create it follows on the wire.
        # The batch holds the channels alone: an object per entry that lives through a pass
        # of 50 000 creates is walked by every garbage collection meanwhile.
        created: list[Channel] = []
        while end - offset >= HEADER_SIZE:
            command, size, data_type, count, p1, p2 = unpack(buffer, offset)
            if command > LAST_COMMAND:  # skipping its "payload" would lose the stream for good
                raise RemoteProtocolError(
                    f"{self.address_text} sent command {command}, which Channel Access does "
                    f"not have (garbage on the circuit?)", address=self.address_text)
            start = offset + HEADER_SIZE
            if size == 0xFFFF and count == 0:
                if end - offset < EXTENDED_HEADER_SIZE:
                    break
                size, count = _unpack_extended(buffer, start)
                start += EXTENDED_SIZES.size
            stop = start + size
            if size > self.max_payload:
                # libca's behaviour: refuse the one request, keep the circuit and its channels
                self._refuse_oversized(command, p2, size)
                if stop > end:
                    self._skip = stop - end
                    offset = end
                    break
                offset = stop
                continue
            if stop > end:
                if size >= LARGE_PAYLOAD:
                    self._start_large(command, data_type, count, p1, p2, start, end, size)
                    offset = end
                break
            if command == 15:  # READ_NOTIFY: p1 is the status, p2 the ioid
                request = pending_pop(p2, None)
                if request is not None:
                    if p1 == 1:
                        self._complete(request, p2, buffer, start, stop, count, False)
                    else:
                        request.fail(p2, self._status_error(request.channel_of(p2), p1, "read"))
            elif command == 1:  # EVENT_ADD: p1 is the status, p2 the subscription id
                # A subscription leaves ``subscriptions`` before its EVENT_CANCEL is sent, so
                # the empty EVENT_ADD confirming a cancel finds nothing here, while an empty
                # plain-type array of a live subscription is still delivered.
                subscription = subscriptions.get(p2)
                if subscription is not None and p1 == 1:
                    self._deliver(subscription, buffer, start, stop, count, False)
            elif command == 18:  # CREATE_CHAN: the native type, count, cid and sid
                channel = channels_get(p1)
                if channel is not None:
                    if 0 <= data_type <= 6:
                        channel.created(data_type, count, p2)
                        created.append(channel)
                    else:  # this channel is unusable; the others on the circuit are fine
                        self._unusable(channel, data_type)
            elif command == 22:  # ACCESS_RIGHTS: p1 is the cid, p2 the rights
                channel = channels_get(p1)
                if channel is not None:
                    channel.access = p2 & 3
                    if channel.watchers:
                        self.listener.access_changed(self, channel)
            else:
                if created:
                    self.listener.channels_created(self, created)
                    created = []
                handler = handlers.get(command)
                if handler is not None:
                    handler(data_type, count, p1, p2, buffer, start, stop, False)
            offset = stop
        if created:
            self.listener.channels_created(self, created)
        if offset:
            remaining = end - offset
            if remaining:
                buffer[:remaining] = buffer[offset:end]
            self._filled = remaining

    def _complete(self, request: ReadRequest | BulkRead | WriteRequest, ioid: int, buffer: Any,
                  start: int, stop: int, count: int, owned: bool) -> None:
        """Answer ``request``; a payload it cannot use fails that request alone. The header
        said where the next message starts, so the circuit and its other channels go on."""
        try:
            request.complete(ioid, buffer, start, stop, count, owned)
        except Exception as exc:
            name = request.channel_of(ioid).name
            request.fail(ioid, RemoteProtocolError(
                f"{name}: unusable answer from {self.address_text}: {exc}", pv=name,
                address=self.address_text))

    def _deliver(self, subscription: Subscription, buffer: Any, start: int, stop: int,
                 count: int, owned: bool) -> None:
        try:
            subscription.deliver(buffer, start, stop, count, owned)
        except Exception as exc:
            log.error("%s: monitor update from %s dropped: %s", subscription.channel.name,
                      self.address_text, exc)

    def _refuse_oversized(self, command: int, request_id: int, size: int) -> None:
        limit = f"{size} bytes, more than EPICS_CA_MAX_ARRAY_BYTES allows ({self.max_payload})"
        if command in (Command.READ_NOTIFY, Command.WRITE_NOTIFY):
            request = self.pending.pop(request_id, None)
            if request is not None:
                name = request.channel_of(request_id).name
                request.fail(request_id, PVFlowError(
                    f"{name}: the answer from {self.address_text} is {limit}; raise "
                    f"EPICS_CA_MAX_ARRAY_BYTES", pv=name, address=self.address_text))
        elif command == Command.EVENT_ADD:
            subscription = self.subscriptions.get(request_id)
            if subscription is not None:
                log.error("%s: monitor update of %s dropped; raise EPICS_CA_MAX_ARRAY_BYTES",
                          subscription.channel.name, limit)

    def _start_large(self, command: int, data_type: int, count: int, p1: int, p2: int,
                     start: int, end: int, size: int) -> None:
        self._large = LargePayload((command, data_type, count, p1, p2), size,
                                   self._view[start:end], self._recycler)

    def _finish_large(self) -> None:
        assert self._large is not None
        command, data_type, count, p1, p2 = self._large.header
        payload = self._large.take()
        self._large = None
        handler = self._handlers.get(command)
        if handler is not None:
            try:
                handler(data_type, count, p1, p2, payload, 0, len(payload), True)
            except (ValueError, IndexError, KeyError, struct.error) as exc:
                raise RemoteProtocolError(f"{self.address_text} sent a malformed message: "
                                          f"{exc}", address=self.address_text) from exc

    # --- handlers: (data_type, count, p1, p2, buffer, start, stop, owned) -----------------------
    def _on_read_notify(self, data_type: int, count: int, status: int, ioid: int, buffer: Any,
                        start: int, stop: int, owned: bool) -> None:
        request = self.pending.pop(ioid, None)
        if request is None:  # answered after its caller gave up: nothing waits for it
            return
        if status != protocol.ECA_NORMAL:
            request.fail(ioid, self._status_error(request.channel_of(ioid), status, "read"))
        else:
            self._complete(request, ioid, buffer, start, stop, count, owned)

    def _on_event_add(self, data_type: int, count: int, status: int, subscription_id: int,
                      buffer: Any, start: int, stop: int, owned: bool) -> None:
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:  # a cancel confirmation, or already closed
            return
        if status == protocol.ECA_NORMAL:
            self._deliver(subscription, buffer, start, stop, count, owned)

    def _on_write_notify(self, data_type: int, count: int, status: int, ioid: int, buffer: Any,
                         start: int, stop: int, owned: bool) -> None:
        request = self.pending.pop(ioid, None)
        if isinstance(request, WriteRequest):
            request.complete_status(status)

    def _on_version(self, data_type: int, count: int, p1: int, p2: int, buffer: Any,
                    start: int, stop: int, owned: bool) -> None:
        self.server_version = count

    def _unusable(self, channel: Channel, native: int) -> None:
        del self.channels[channel.cid]
        self.listener.channel_failed(self, channel, f"the server gave native type {native}, "
                                     "which is not a Channel Access type (0..6)")

    def _on_create_channel_failed(self, data_type: int, count: int, cid: int, p2: int,
                                  buffer: Any, start: int, stop: int, owned: bool) -> None:
        channel = self.channels.pop(cid, None)
        if channel is not None:
            self.listener.channel_failed(self, channel, "the server refused to create it")

    def _on_server_disconnect(self, data_type: int, count: int, cid: int, p2: int, buffer: Any,
                              start: int, stop: int, owned: bool) -> None:
        channel = self.channels.pop(cid, None)
        if channel is not None:
            self.listener.channel_lost(self, channel)

    def _on_search(self, data_type: int, count: int, p1: int, cid: int, buffer: Any,
                   start: int, stop: int, owned: bool) -> None:
        # Name servers (EPICS_CA_NAME_SERVERS) answer searches over TCP like over UDP, except
        # that rsrv leaves out the payload with the server's minor version.
        host = self.host if p1 in (0, 0xFFFFFFFF) else protocol.ip_from_int(p1)
        version = (int.from_bytes(bytes(buffer[start:start + 2]), "big") if stop - start >= 2
                   else self.server_version)
        self.listener.search_answered(self, protocol.SearchResponse(cid, host, data_type, version))

    def _on_error(self, data_type: int, count: int, cid: int, status: int, buffer: Any,
                  start: int, stop: int, owned: bool) -> None:
        original = read_header(buffer, start, stop)
        text = bytes(buffer[min(start + protocol.HEADER_SIZE, stop):stop]).split(b"\0", 1)[0]
        message = text.decode("utf-8", "replace")
        if original is None:
            return
        command, _, _, _, original_p2 = original[:5]
        if command in (Command.READ_NOTIFY, Command.WRITE_NOTIFY):
            request = self.pending.pop(original_p2, None)
            if request is not None:
                error = self._status_error(request.channel_of(original_p2), status, "request",
                                           message)
                request.fail(original_p2, error)
        elif command == Command.CREATE_CHAN:
            channel = self.channels.pop(cid, None)
            if channel is not None:
                self.listener.channel_failed(self, channel, message or protocol.describe_status(
                    status))

    def _status_error(self, channel: Channel, status: int, what: str,
                      message: str = "") -> PVFlowError:
        detail = protocol.describe_status(status) + (f" ({message})" if message else "")
        if status in (368, 376):
            return AccessDeniedError(f"{what} of {channel.name} denied: {detail}",
                                     pv=channel.name, address=self.address_text)
        return PVFlowError(f"{what} of {channel.name} failed at {self.address_text}: {detail}",
                           pv=channel.name, address=self.address_text)

    # --- teardown ------------------------------------------------------------------------------
    def close(self, error: BaseException) -> list[Channel]:
        """Fail every request in flight (each error naming its PV); return the channels that
        were on this circuit. The receive buffer stays: a caller reading its answer
        (:meth:`take_reply`) may still hold it."""
        self.closed = True
        pending, self.pending = self.pending, {}
        for ioid, request in pending.items():
            request.fail(ioid, naming_pv(error, request.channel_of(ioid).name,
                                         self.address_text))
        channels = list(self.channels.values())
        self.channels.clear()
        self.subscriptions.clear()
        if self._large is not None:
            self._large.release()
            self._large = None
        return channels

