"""A declarative state machine for IOCs (application layer; imports no EPICS code).

Every IOC of pvflow is driven by one of these. The machine is data: the states (an ``enum.Enum``),
a table of allowed transitions, hooks run on entering a state and a hook run on every step of a
state. Around that it keeps an error list with the protocol the `state`/`error`/`clear` PVs
expose:

- ``add_error(message)`` records the error and moves to the error state when the table allows
  it from the current state, otherwise to the fail state ("do or die": an error nobody can
  acknowledge is fatal);
- the error state waits until ``clear()`` empties the list, then moves to the recovery state;
- the fail state is terminal: the runner stops the IOC with a non-zero exit code.

Any transition to the fail state is always allowed. A transition missing from the table, or a
hook that raises, is a bug in the IOC and also ends in the fail state, with the reason logged:
a state machine in an unknown state must never keep serving PVs as if all were well.

The machine is not thread-safe: it is owned by the IOC's asyncio loop thread.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Generic, TypeVar

from .structured_logging import log_event

StateT = TypeVar("StateT", bound=enum.Enum)

#: An enter hook gets the previous state; it may return the next state (or None to stay).
EnterHook = Callable[[StateT], "StateT | None"]
#: A step hook runs on every step of its state; it may return the next state (or None).
StepHook = Callable[[], "StateT | None"]
#: Observers see every change, e.g. to publish the `state` PV.
ChangeObserver = Callable[[StateT, StateT], None]

# A chain of enter hooks each asking for another state longer than this is a loop (a bug).
MAX_CHAINED_TRANSITIONS = 32


class TransitionError(RuntimeError):
    """A transition the table does not allow was requested (a bug in the IOC, not in the user)."""


class StateMachine(Generic[StateT]):
    """States, allowed transitions, enter and step hooks, and the error list of one IOC."""

    def __init__(
        self,
        name: str,
        transitions: Mapping[StateT, Iterable[StateT]],
        *,
        initial: StateT,
        error: StateT,
        fail: StateT,
        recover: StateT,
        logger: logging.Logger | None = None,
    ) -> None:
        states = ({fail} | set(transitions)
                  | {t for targets in transitions.values() for t in targets})
        for role, state in (("initial", initial), ("error", error), ("fail", fail),
                            ("recover", recover)):
            if state not in states:
                raise ValueError(f"{name}: {role} state {state.name} is not in the transition table")
        self.name = name
        self._transitions: dict[StateT, frozenset[StateT]] = {
            state: frozenset(targets) | {fail} for state, targets in transitions.items()
        }
        self._transitions.setdefault(fail, frozenset())
        self.initial = initial
        self.error_state = error
        self.fail_state = fail
        self.recover_state = recover
        self._state = initial
        self._errors: list[str] = []
        self._failure: str | None = None
        self._enter_hooks: dict[StateT, list[EnterHook[StateT]]] = {}
        self._step_hooks: dict[StateT, list[StepHook[StateT]]] = {}
        self._observers: list[ChangeObserver[StateT]] = []
        self._log = logger or logging.getLogger(f"pvflow.ioc.{name}")

    # -- declaration -------------------------------------------------------------------------

    def on_enter(self, state: StateT, hook: EnterHook[StateT]) -> None:
        """Run ``hook(previous_state)`` every time ``state`` is entered."""
        self._enter_hooks.setdefault(state, []).append(hook)

    def on_step(self, state: StateT, hook: StepHook[StateT]) -> None:
        """Run ``hook()`` on every :meth:`step` while in ``state``."""
        self._step_hooks.setdefault(state, []).append(hook)

    def observe(self, observer: ChangeObserver[StateT]) -> None:
        """Call ``observer(old, new)`` after every state change."""
        self._observers.append(observer)

    def allowed(self, source: StateT) -> frozenset[StateT]:
        """The states reachable from ``source`` in one transition."""
        return self._transitions.get(source, frozenset({self.fail_state}))

    # -- inspection --------------------------------------------------------------------------

    @property
    def state(self) -> StateT:
        return self._state

    @property
    def errors(self) -> list[str]:
        """The pending errors, oldest first (a copy)."""
        return list(self._errors)

    @property
    def failed(self) -> bool:
        return self._state is self.fail_state

    @property
    def failure(self) -> str | None:
        """Why the machine failed, or None while it has not."""
        return self._failure

    # -- driving -----------------------------------------------------------------------------

    def go(self, target: StateT) -> None:
        """Move to ``target``, running its enter hooks (which may chain further transitions)."""
        for _ in range(MAX_CHAINED_TRANSITIONS):
            if target is self._state or self._state is self.fail_state:
                return  # already there; and nothing leaves FAIL
            if target not in self.allowed(self._state):
                self._fail(f"transition {self._state.name} -> {target.name} is not allowed")
                return
            previous, self._state = self._state, target
            log_event(self._log, logging.INFO, "State switch", old=previous.name,
                      new=target.name)
            for observer in self._observers:
                self._call(observer, previous, target)
                if self._state is not target:
                    return
            following = None
            for hook in self._enter_hooks.get(target, []):
                result = self._call(hook, previous)
                if self._state is not target:
                    return  # the hook failed or moved on by itself (e.g. add_error)
                if result is not None and result is not target:
                    following = result
            if following is None:
                return
            target = following
        self._fail(f"more than {MAX_CHAINED_TRANSITIONS} chained transitions (a hook loop)")

    def step(self) -> None:
        """Run the step hooks of the current state once; the error state checks the list."""
        state = self._state
        if state is self.error_state and not self._errors:
            self.go(self.recover_state)
            return
        for hook in self._step_hooks.get(state, []):
            result = self._call(hook)
            if self._state is not state:
                return
            if result is not None and result is not state:
                self.go(result)
                return

    def add_error(self, message: str, *, fatal: bool = False) -> None:
        """Record an error and move to the error state, or to FAIL when fatal or not allowed."""
        if self._state is self.fail_state:
            return
        self._errors.append(message)
        log_event(self._log, logging.ERROR, "Error", state=self._state.name, error=message,
                  fatal=fatal)
        if fatal or (self._state is not self.error_state
                     and self.error_state not in self.allowed(self._state)):
            self._fail(message)
        elif self._state is not self.error_state:
            self.go(self.error_state)

    def clear(self) -> None:
        """Forget all errors; the error state then moves on to the recovery state."""
        if self._state is self.fail_state:
            return
        self._errors.clear()
        if self._state is self.error_state:
            self.go(self.recover_state)

    def fail(self, message: str) -> None:
        """Enter the terminal fail state with ``message`` as the reason."""
        self._fail(message)

    # -- internals ---------------------------------------------------------------------------

    def _fail(self, message: str) -> None:
        if self._state is self.fail_state:
            return
        self._failure = message
        if message not in self._errors:
            self._errors.append(message)
        previous, self._state = self._state, self.fail_state
        log_event(self._log, logging.CRITICAL, "State switch", old=previous.name,
                  new=self.fail_state.name, reason=message)
        for observer in self._observers:
            try:
                observer(previous, self.fail_state)
            except Exception as exc:  # noqa: BLE001 - already failing; keep the first reason
                log_event(self._log, logging.ERROR, "Observer raised while failing",
                          error=repr(exc))
        for hook in self._enter_hooks.get(self.fail_state, []):
            try:
                hook(previous)
            except Exception as exc:  # noqa: BLE001 - already failing; keep the first reason
                log_event(self._log, logging.ERROR, "FAIL hook raised", error=repr(exc))

    def _call(self, hook: Callable[..., StateT | None], *args: object) -> StateT | None:
        """Run a hook; an exception in it is a bug, so the machine fails naming the hook."""
        try:
            return hook(*args)
        except Exception as exc:  # noqa: BLE001 - any hook bug must end in FAIL, not a hang
            name = getattr(hook, "__qualname__", repr(hook))
            self._log.debug("hook raised", exc_info=True)
            self._fail(f"{name} raised {type(exc).__name__}: {exc}")
            return None
