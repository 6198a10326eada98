"""`Session`: what every pvflow.epics PV of a process shares (integration layer over Context).

pyepics keeps one libca context per process, created on first use and recreated in a forked
child (``CAProcess``). The session is its pvflow counterpart: one Context, created on first
use from the EPICS_* environment, plus the condition every PV's Flags wait on. A forked child
starts a fresh session: channels of the parent's Context belong to the parent's sockets.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, Protocol

from ..context import Context


class Host(Protocol):
    """What a PV object needs from its owner: a Session here, ophyd's control layer there."""

    flags: threading.Condition

    @property
    def context(self) -> Context: ...

    def wrap(self, kind: str, callback: Callable[..., Any]) -> Callable[..., Any]: ...


class Session:
    """One Context and the shared wait condition; ``wrap`` lets an integration route PV
    callbacks through its own threads (ophyd's dispatcher), pvflow.epics calls them inline on
    pvflow's callback workers."""

    def __init__(self, context: Context | None = None):
        self._context = context
        self._lock = threading.Lock()
        self.flags = threading.Condition()

    @property
    def context(self) -> Context:
        if self._context is None:
            with self._lock:
                if self._context is None:
                    self._context = Context()
        return self._context

    def wrap(self, kind: str, callback: Callable[..., Any]) -> Callable[..., Any]:
        """``callback`` as the session runs it; ``kind`` is ``"metadata"`` (connection and
        access rights) or ``"get_put"`` (put completion), ophyd's dispatcher names."""
        return callback


_session: Session | None = None
_session_lock = threading.Lock()
_forget_hooks: list[Callable[[], None]] = []


def default_session() -> Session:
    """The process's session, created on first use."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                _session = Session()
    return _session


def use_context(context: Context | None) -> Session:
    """Make ``context`` the one every later pvflow.epics PV, caget and channel uses (None:
    a fresh Context from the environment); caches of the previous one are forgotten."""
    global _session
    forget()
    with _session_lock:
        _session = Session(context)
    return _session


def on_forget(hook: Callable[[], None]) -> None:
    """Call ``hook`` whenever the session is replaced (the PV and channel caches empty
    themselves)."""
    _forget_hooks.append(hook)


def forget() -> None:
    for hook in _forget_hooks:
        hook()


def _after_fork_in_child() -> None:
    global _session
    _session = None
    forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
