"""Record helpers shared by every pvflow IOC (application layer, over pythonSoftIOC).

Call these only from :meth:`IocApp.build_records` and later: they import ``softioc``, which
loads EPICS base. Three ideas live here:

- **Synchronous publishing.** pythonSoftIOC's input records default to ``SCAN="I/O Intr"``:
  ``set()`` only queues processing on an EPICS callback thread, so two quick ``set()`` calls may
  be processed once, with the second value, and the order between records is not kept. Our
  input records are ``Passive`` and :func:`publish` processes them at once in the calling
  thread. Monitors are then posted in the order the IOC publishes (an image before the counter
  that announces it) and no update is merged away inside the IOC.
- **Internal versus client writes.** Output records (``acquire``, ``clear``...) also reflect
  the state, so the IOC writes them too. Writes made from the IOC's own loop thread are
  internal; writes from any other thread come from the CA or PVA server and are client
  requests. Decisions are taken in ``validate``, which runs synchronously in the writer's
  thread, so a refused client write never changes the record.
- **The status PVs** ``state``, ``error`` (40-character string, as EPICS strings are),
  ``error_text`` (the whole message) and ``clear``, bound to a :class:`StateMachine`.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from pathlib import Path
from collections.abc import Callable, Collection
from typing import Any

from .settings import MAX_RECORD_NAME, ConfigError
from .state_machine import StateMachine
from .structured_logging import log_event

# stringin/stringout VAL is char[40], including the terminating NUL.
MAX_STRING = 39
ERROR_TEXT_LENGTH = 1024


class RecordNameError(ConfigError):
    """A record name EPICS would refuse: the runner reports it in one line and exits 2."""


def check_record_name(name: str) -> str:
    """``name`` if EPICS accepts it as a record name, else RecordNameError saying why."""
    if not name or len(name) > MAX_RECORD_NAME:
        raise RecordNameError(f"record name {name!r} has {len(name)} characters; EPICS allows 1 to "
                         f"{MAX_RECORD_NAME} (shorten the prefix or the channel names)")
    bad = sorted({c for c in name if c.isspace() or c in "\"'$.{}\\"})
    if bad:
        raise RecordNameError(f"record name {name!r} contains forbidden characters {bad}")
    return name


# Clients may write the fields operators change (ASL0: the VAL of output records) and only
# read the rest (ASL1: links such as FLNK and OUT, scan and alarm settings, PROC).
VALUES_ONLY_ASG = "VALUES_ONLY"
_VALUES_ONLY_ACF = f"ASG({VALUES_ONLY_ASG}) {{ RULE(1, READ) RULE(0, WRITE) }}\n" \
    "ASG(DEFAULT) { RULE(1, READ) RULE(1, WRITE) }\n"


def use_values_only_access_security() -> Path:
    """Load access security with the ``VALUES_ONLY`` group, for records whose links a client
    must not rewire (``ASG=VALUES_ONLY``). Call before ``iocInit``, which reads the file; the
    returned directory may go once it has run."""
    import tempfile

    from softioc import imports

    directory = Path(tempfile.mkdtemp(prefix="pvflow-acf-"))
    acf = directory / "values_only.acf"
    acf.write_text(_VALUES_ONLY_ACF)
    imports.dbCore.asSetFilename.argtypes = [ctypes.c_char_p]
    if imports.dbCore.asSetFilename(str(acf).encode()) != 0:
        raise RuntimeError(f"EPICS refused the access security file {acf}")
    return directory


def use_full_record_names() -> None:
    """Make the builder take record names as given (pvflow passes prefix+name itself)."""
    import epicsdbbuilder

    epicsdbbuilder.SetSimpleRecordNames(None, "")


def process(record: Any) -> None:
    """Process ``record`` now, in this thread (a put to its ``.PROC`` field)."""
    from softioc import fields, imports

    one = ctypes.c_int32(1)
    imports.db_put_field_process(record.name + ".PROC", fields.DBF_LONG,
                                 ctypes.addressof(one), 1, True)


def publish(record: Any, value: Any) -> None:
    """Give a Passive input record a new value and post its monitors before returning."""
    record.set(value)
    process(record)


def truncate(text: str, length: int = MAX_STRING) -> str:
    """Fit ``text`` into an EPICS string (UTF-8 bytes), marking a cut with ``~``."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= length:
        return text
    return data[: length - 1].decode("utf-8", errors="ignore") + "~"


class LoopThread:
    """Knows the IOC's loop thread: writes from it are internal, all others are clients'."""

    def __init__(self, call_soon_threadsafe: Callable[..., object]) -> None:
        self.ident = threading.get_ident()
        self._call_soon_threadsafe = call_soon_threadsafe

    def is_current(self) -> bool:
        return threading.get_ident() == self.ident

    def call(self, function: Callable[..., object], *args: object) -> None:
        """Run ``function(*args)`` in the loop thread (now if already there)."""
        if self.is_current():
            function(*args)
        else:
            self._call_soon_threadsafe(function, *args)


class StatusRecords:
    """The ``state``, ``error``, ``error_text`` and ``clear`` PVs of one state machine.

    ``state`` follows the machine. ``error`` shows the first pending error (truncated to an
    EPICS string; ``error_text`` has it whole) and also reports refused client writes, so the
    one who wrote learns why. A client write to ``clear`` while in the error state calls
    ``on_clear``: any value by default (Diss clears on 0 or 1), or only one of
    ``clear_values`` (syncster clears on 1); ``clear`` is reset to 0 when the machine leaves
    the error state.
    """

    def __init__(self, prefix: str, machine: StateMachine[Any], loop_thread: LoopThread,
                 on_clear: Callable[[], None] | None = None,
                 logger: logging.Logger | None = None,
                 clear_values: Collection[int] | None = None) -> None:
        from softioc import builder

        self.machine = machine
        self._clear_values = clear_values
        self.loop_thread = loop_thread
        self._on_clear = on_clear or machine.clear
        self._log = logger or logging.getLogger("pvflow.ioc")
        self.state = builder.stringIn(check_record_name(prefix + "state"),
                                      initial_value=machine.state.name, SCAN="Passive")
        self.error = builder.stringIn(check_record_name(prefix + "error"), initial_value="",
                                      SCAN="Passive")
        self.error_text = builder.longStringIn(check_record_name(prefix + "error_text"),
                                               length=ERROR_TEXT_LENGTH, initial_value="",
                                               SCAN="Passive")
        self.clear = builder.longOut(check_record_name(prefix + "clear"), initial_value=0,
                                     always_update=True,
                                     validate=self.guarded(self._validate_clear))
        machine.observe(self._state_changed)

    def _validate_clear(self, record: Any, value: int) -> bool:
        if self.loop_thread.is_current():
            return True  # the IOC resetting the PV
        if self._clear_values is not None and value not in self._clear_values:
            log_event(self._log, logging.INFO, "Clear ignored", pv=record.name, value=value,
                      reason=f"only {sorted(self._clear_values)} clear")
            return True
        log_event(self._log, logging.INFO, "Clear requested", pv=record.name, value=value,
                  state=self.machine.state.name)
        self.loop_thread.call(self._clear_requested)
        return True

    def _clear_requested(self) -> None:
        if self.machine.state is self.machine.error_state:
            self._on_clear()
        self.show_error("")

    def _state_changed(self, old: Any, new: Any) -> None:
        # The state goes last: a client that sees it finds error and clear already matching.
        if new is self.machine.error_state or new is self.machine.fail_state:
            errors = self.machine.errors
            self.show_error(errors[0] if errors else (self.machine.failure or ""))
        elif old is self.machine.error_state:
            self.show_error("")
            self.clear.set(0)
        publish(self.state, new.name)

    def show_error(self, message: str) -> None:
        """Put ``message`` in ``error`` (truncated) and ``error_text`` (whole)."""
        publish(self.error, truncate(message))
        publish(self.error_text, message[: ERROR_TEXT_LENGTH - 1])

    def guarded(self, validate: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
        """Wrap a ``validate`` callback: if it raises, the write is refused with the reason.

        pythonSoftIOC calls ``validate`` from a C callback, where an exception would only be
        printed and the write silently accepted.
        """
        def checked(record: Any, value: Any) -> bool:
            try:
                return bool(validate(record, value))
            except Exception as exc:  # noqa: BLE001 - never let a bad put pass unexplained
                self._log.debug("validate raised", exc_info=True)
                self.refuse(record.name, value, f"{type(exc).__name__}: {exc}")
                return False

        return checked

    def refuse(self, record_name: str, value: object, reason: str) -> None:
        """Report a refused client write naming the PV, the value and the reason."""
        message = f"{record_name}={value!r} refused: {reason}"
        log_event(self._log, logging.WARNING, "Put refused", pv=record_name, value=value,
                  reason=reason)
        self.loop_thread.call(self.show_error, message)
