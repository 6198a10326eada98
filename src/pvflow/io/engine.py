"""What both protocol engines do the same way around their circuits (transport layer): shut
down, probe silent circuits with echoes and close the ones that stay silent, report counts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import DisconnectedError, PVFlowError
from .channel_failure import ChannelFailure
from .channels import Action, ChannelT, ChannelTable
from .contract import RemoteCalls, Sink, Slots
from .loop import IOLoop
from .requests import PendingRequest

ECHO_TIMEOUT = 5.0  # seconds an echo may go unanswered before its circuit is declared dead


class EngineBase(ChannelTable[ChannelT]):
    """A protocol engine's shared half; the protocol supplies ``close_connection``,
    ``_send_echo`` and ``cancel``, and sets ``_search`` once its socket exists."""

    def __init__(self, loop: IOLoop, factory: Callable[[str, int], ChannelT],
                 begin_search: Callable[[list[ChannelT]], None], id_limit: int,
                 echo_after: float):
        super().__init__(loop, factory, begin_search, id_limit)
        self._connections: dict[tuple[str, int], Any] = {}
        self._name_server_connections: list[Any] = []
        self._search: Any = None
        self._echo_after = echo_after  # seconds of silence before an echo probes a circuit

    def close_connection(self, connection: Any, error: BaseException,
                         research: bool = True) -> None:
        raise NotImplementedError

    def _send_echo(self, connection: Any) -> None:
        raise NotImplementedError

    def cancel(self, channel: ChannelT, request_id: int) -> bool:
        """Forget a request; False when the I/O thread already took it (its answer is coming)."""
        raise NotImplementedError

    @property
    def remote_calls(self) -> RemoteCalls[ChannelT] | None:
        """Neither RPC nor introspection, unless the protocol has them."""
        return None

    def send(self, channel: ChannelT, frame: bytes, on_io_thread: bool) -> None:
        """Send now from a caller thread; queue for the end-of-iteration flush on the I/O one."""
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
        """Put a failed channel back to searching (the protocol's states and search)."""
        raise NotImplementedError

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
        raise NotImplementedError

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
