"""Which readiness mechanism the I/O thread waits on (transport layer).

Linux has ``select.epoll``, used directly: its ``poll()`` returns ``(fd, mask)`` pairs with no
object per event, which is the I/O thread's hot path. Where epoll is absent (macOS, the BSDs,
Windows) :class:`SelectorPoller` offers the same five methods over the ``selectors`` module
(kqueue, poll or select, whichever the system has best). ``PVFLOW_IO_LOOP`` picks one by
name, so the fallback can be tested on Linux: ``epoll``, ``selectors`` (the system's default
selector), ``select`` or ``poll``.
"""

from __future__ import annotations

import os
import select
import selectors
from typing import Protocol

# epoll's bits, which the loop and its handlers use whatever the poller (Linux ABI values)
READ: int = getattr(select, "EPOLLIN", 0x001)
WRITE: int = getattr(select, "EPOLLOUT", 0x004)

SELECTORS: dict[str, str] = {
    "selectors": "DefaultSelector", "select": "SelectSelector", "poll": "PollSelector"}


class Poller(Protocol):
    """What the loop needs of ``select.epoll``."""

    def register(self, fd: int, events: int, /) -> None: ...
    def modify(self, fd: int, events: int, /) -> None: ...
    def unregister(self, fd: int, /) -> None: ...
    def poll(self, timeout: float, /) -> list[tuple[int, int]]: ...
    def close(self) -> None: ...


def _to_selector(events: int) -> int:
    return (selectors.EVENT_READ if events & READ else 0) | \
        (selectors.EVENT_WRITE if events & WRITE else 0)


class SelectorPoller:
    """epoll's interface over a ``selectors`` selector, masks translated both ways."""

    def __init__(self, selector: selectors.BaseSelector):
        self.selector = selector

    def register(self, fd: int, events: int) -> None:
        self.selector.register(fd, _to_selector(events))

    def modify(self, fd: int, events: int) -> None:
        self.selector.modify(fd, _to_selector(events))

    def unregister(self, fd: int) -> None:
        try:
            self.selector.unregister(fd)
        except KeyError:
            raise ValueError(f"file descriptor {fd} is not registered") from None

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        ready = self.selector.select(None if timeout < 0 else timeout)
        return [(key.fd, (READ if mask & selectors.EVENT_READ else 0)
                 | (WRITE if mask & selectors.EVENT_WRITE else 0)) for key, mask in ready]

    def close(self) -> None:
        self.selector.close()


def make_poller(choice: str | None = None) -> Poller:
    """epoll where the system has it, else the system's best selector; ``choice`` (default
    ``$PVFLOW_IO_LOOP``) names one explicitly."""
    choice = (choice if choice is not None else os.environ.get("PVFLOW_IO_LOOP", "")).strip()
    if not choice:
        choice = "epoll" if hasattr(select, "epoll") else "selectors"
    if choice == "epoll" and hasattr(select, "epoll"):
        return select.epoll()
    selector_class = getattr(selectors, SELECTORS.get(choice, ""), None)
    if selector_class is None:
        known = ", ".join(["epoll", *SELECTORS])
        raise ValueError(f"PVFLOW_IO_LOOP={choice!r} is not available on this system; "
                         f"use one of {known}")
    return SelectorPoller(selector_class())
