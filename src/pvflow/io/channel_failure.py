"""A channel its server refused, and when to try it again (transport layer, no I/O).

Searching again at once would ask the same server the same question in a loop: a server
that answers CREATE_CHAN with a type nobody knows, or refuses the channel, cost 12 000
reconnects in 5 s. A failed channel waits until somebody asks for it and its back-off has
passed.
"""

from __future__ import annotations


class ChannelFailure:
    """Why a channel failed at its server, and when it may be searched again: after 1, 2,
    4 ... 60 s, so a server that keeps refusing costs one round trip per back-off, not a loop."""

    __slots__ = ("reason", "attempts", "retry_at", "retry_scheduled", "active")

    FIRST_BACKOFF = 1.0
    MAX_BACKOFF = 60.0

    def __init__(self) -> None:
        self.reason = ""
        self.attempts = 0
        self.retry_at = 0.0
        self.retry_scheduled = False
        self.active = False  # the channel waits to be asked for again

    def record(self, reason: str, now: float) -> None:
        self.reason = reason
        self.attempts += 1
        self.active = True
        self.retry_at = now + min(self.FIRST_BACKOFF * 2 ** (self.attempts - 1), self.MAX_BACKOFF)
