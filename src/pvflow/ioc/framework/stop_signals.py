"""SIGTERM and SIGINT ask an asyncio service to stop (application layer), on every system.

Unix event loops take signal handlers directly; Windows' do not (``add_signal_handler`` raises
``NotImplementedError``), so there the handler goes through :func:`signal.signal` and hands
the stop over to the loop thread-safely.
"""

from __future__ import annotations

import asyncio
import signal


def stop_on_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set ``stop`` on SIGTERM or SIGINT."""
    for number in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(number, stop.set)
        except NotImplementedError:
            signal.signal(number, lambda *_: loop.call_soon_threadsafe(stop.set))
