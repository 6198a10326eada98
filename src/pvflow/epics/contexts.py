"""pyepics' libca housekeeping in ``epics.ca``: polling, contexts, the thread class and the
decorators (integration layer). pvflow's I/O thread delivers by itself and one Context serves
every thread, so these keep pyepics scripts running and do next to nothing.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from . import dbr
from .session import default_session

CONTEXT = 1  # pyepics' context handle: one per session, valid in every thread


def pend_io(timeout: float = 1.0) -> int:
    return dbr.ECA_NORMAL


def pend_event(timeout: float = 1.e-5) -> int:
    """Callbacks arrive by themselves; this only yields ``timeout`` seconds, as libca does."""
    time.sleep(timeout)
    return dbr.ECA_NORMAL


def poll(evt: float = 1.e-5, iot: float = 1.0) -> int:
    return pend_event(evt)


def flush_io() -> int:
    return dbr.ECA_NORMAL


def test_io() -> int:
    return dbr.ECA_IODONE


def initialize_libca() -> int:
    default_session()
    return CONTEXT


def finalize_libca(maxtime: float = 10.0) -> None:
    """Kept for pyepics' scripts: the Context closes with the process."""


def create_context(ctx: Any = None) -> None:
    """Accepted, no effect: every thread shares the session's Context."""


context_create = create_context


def destroy_context() -> None:
    """Accepted, no effect (see ``create_context``)."""


context_destroy = destroy_context


def attach_context(context: Any) -> int:
    return dbr.ECA_NORMAL


def detach_context() -> int:
    return dbr.ECA_NORMAL


def use_initial_context() -> None:
    initialize_libca()


def current_context() -> int:
    return CONTEXT


def version() -> str:
    return "4.13"  # the CA protocol minor version pvflow speaks, as libca's ca_version


def message(status: int) -> str:
    return {dbr.ECA_NORMAL: "Normal successful completion",
            dbr.ECA_TIMEOUT: "User specified timeout on IO operation expired",
            dbr.ECA_IODONE: "IO operations have completed",
            dbr.ECA_BADCHID: "Invalid channel identifier"}.get(status, f"CA status {status}")


def write(msg: str, newline: bool = True, flush: bool = True) -> None:
    """pyepics' writer for its messages (``camonitor``, ``cainfo``)."""
    sys.stdout.write(msg + ("\n" if newline else ""))
    if flush:
        sys.stdout.flush()


def _passthrough(function: Callable[..., Any]) -> Callable[..., Any]:
    """pyepics' decorators (``withCA``, ``withInitialContext`` ...) have nothing to ensure."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return function(*args, **kwargs)

    return wrapper


withCA = withCHID = withConnectedCHID = withMaybeConnectedCHID = withInitialContext = \
    withSEVCHK = _passthrough  # noqa: N816


class CAThread(threading.Thread):
    """pyepics' thread class; any thread may use pvflow, so this is a plain Thread."""
