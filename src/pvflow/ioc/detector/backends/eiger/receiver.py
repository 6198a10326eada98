"""The Stream V2 receiving end: a ZeroMQ PULL socket decoded into a queue (asyncio).

It runs for the backend's whole life, not per series, so no message is lost between arm and
the first wait; the backend drains what is left of earlier series before each arm. A message
that cannot be decoded is queued as its :class:`StreamError`, so the series it belonged to
fails with the reason instead of waiting for an image that will never come.
"""

from __future__ import annotations

import asyncio
import logging

import zmq
import zmq.asyncio

from .stream import Message, StreamError, decode

log = logging.getLogger("pvflow.ioc.detector.eiger")

QUEUE_LIMIT = 1000  # messages kept while nobody acquires (another client's series, say)

Received = Message | StreamError


class StreamReceiver:
    """Pull and decode the detector's stream until :meth:`close`."""

    def __init__(self, host: str, port: int) -> None:
        self.address = f"tcp://{host}:{port}"
        self.queue: asyncio.Queue[Received] = asyncio.Queue(QUEUE_LIMIT)
        self._context = zmq.asyncio.Context()
        self._socket = self._context.socket(zmq.PULL)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(self.address)
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            frame = await self._socket.recv(copy=False)
            try:
                item: Received = decode(frame.buffer)
            except StreamError as exc:
                log.warning("undecodable stream message from %s: %s", self.address, exc)
                item = exc
            if self.queue.full():
                self.queue.get_nowait()  # keep the newest: an old series is of no use
            self.queue.put_nowait(item)

    def drain(self) -> int:
        """Forget everything received so far; returns how many messages that was."""
        count = 0
        while not self.queue.empty():
            self.queue.get_nowait()
            count += 1
        return count

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._socket.close()
        self._context.term()
