"""Run one IOC app in this process on pythonSoftIOC (application layer).

The runner owns the process: logging, the asyncio loop (in the main thread), signals, EPICS
start-up and the exit code. An app only says what to prepare, which records to build and how
to run. The order matters and is kept here once:

1. ``prepare()``: the app may talk to its hardware before any record exists (the detector
   needs the device configuration to know its channels and image size);
2. ``EPICS_CA_MAX_ARRAY_BYTES`` is raised to what the app's biggest array needs, before the
   CA server reads it at ``iocInit`` (pythonSoftIOC loads EPICS base on import, but the server
   reads the variable only when it starts);
3. ``build_records()``, ``LoadDatabase()``, ``iocInit()`` with an asyncio dispatcher on our
   loop: CA (rsrv) and, as pvxslibs is installed, PVA (qsrv) serve the same records;
4. ``run()`` until it returns an exit code or SIGTERM/SIGINT asks to stop.

Exit codes: 0 after a requested stop, 1 when the app ends in FAIL, 2 for a configuration error
(one line on stderr naming the variable). The last log line always says why the IOC stopped.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Protocol

from .records import LoopThread, use_full_record_names
from .settings import ConfigError
from .stop_signals import stop_on_signals
from .structured_logging import log_event

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_CONFIG = 2

# Room for the CA message header and DBR_TIME/CTRL metadata around the biggest array.
ARRAY_BYTES_MARGIN = 64 * 1024
READY_MESSAGE = "IOC running"

log = logging.getLogger("pvflow.ioc.runner")


class StartupFailure(RuntimeError):
    """The app cannot reach a state in which it could serve its PVs; the IOC exits with 1."""


class IocApp(Protocol):
    """What the runner needs from an IOC app."""

    name: str

    async def prepare(self) -> None:
        """Bring the app to where its records can be built (may raise StartupFailure)."""

    def required_array_bytes(self) -> int:
        """The payload size of the biggest array record, for EPICS_CA_MAX_ARRAY_BYTES."""

    def build_records(self, loop_thread: LoopThread) -> None:
        """Create every record (softioc builder calls); called once, in the loop thread."""

    def started(self) -> None:
        """Records are served: publish initial values."""

    async def run(self, stop: asyncio.Event) -> int:
        """Serve until ``stop`` is set (exit 0) or the app fails (exit 1)."""

    async def close(self) -> None:
        """Release the hardware; called once on every way out."""


def raise_array_limit(needed_bytes: int, environ: Mapping[str, str] | None = None) -> int:
    """Set EPICS_CA_MAX_ARRAY_BYTES in this process to at least ``needed_bytes`` plus margin."""
    environ = os.environ if environ is None else environ
    wanted = needed_bytes + ARRAY_BYTES_MARGIN
    try:
        current = int(environ.get("EPICS_CA_MAX_ARRAY_BYTES", "0"))
    except ValueError:
        current = 0
    limit = max(current, wanted, 16384)
    os.environ["EPICS_CA_MAX_ARRAY_BYTES"] = str(limit)
    return limit


async def _serve(app: IocApp) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stop_on_signals(loop, stop)
    try:
        prepare = asyncio.ensure_future(app.prepare())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({prepare, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not prepare.done():
            prepare.cancel()
            log_event(log, logging.INFO, "IOC stopped before it was ready", app=app.name)
            return EXIT_OK
        stopping.cancel()
        try:
            prepare.result()
        except StartupFailure as exc:
            log_event(log, logging.CRITICAL, "IOC failed to start", app=app.name,
                      reason=str(exc))
            return EXIT_FAIL
        limit = raise_array_limit(app.required_array_bytes())
        log_event(log, logging.INFO, "CA array limit", EPICS_CA_MAX_ARRAY_BYTES=limit)

        from softioc import asyncio_dispatcher, builder, softioc

        loop_thread = LoopThread(loop.call_soon_threadsafe)
        use_full_record_names()
        try:
            app.build_records(loop_thread)
        except ConfigError as exc:  # a record name known only now (from the hardware)
            print(f"pvflow ioc: {exc}", file=sys.stderr, flush=True)
            return EXIT_CONFIG
        builder.LoadDatabase()
        softioc.iocInit(asyncio_dispatcher.AsyncioDispatcher(loop=loop))
        app.started()
        # Start and stop lines are logged whatever the level: supervisors wait for them.
        log_event(log, max(logging.INFO, log.getEffectiveLevel()), READY_MESSAGE,
                  app=app.name)
        code = await app.run(stop)
        if code == EXIT_OK:
            log_event(log, max(logging.INFO, log.getEffectiveLevel()), "IOC stopped on request",
                      app=app.name)
        return code
    finally:
        try:
            await asyncio.wait_for(app.close(), timeout=10)
        except Exception as exc:  # noqa: BLE001 - closing must not hide the exit reason
            log_event(log, logging.WARNING, "Backend close failed", error=repr(exc))


def run_ioc(make_app: Callable[[Mapping[str, str]], IocApp],
            environ: Mapping[str, str] | None = None) -> int:
    """Build the app from ``environ`` (default ``os.environ``), serve it, return the exit code.

    ``make_app`` parses the configuration and configures logging; a :class:`ConfigError` from
    it is printed as one line. Once EPICS has started, the process ends through ``epicsExit``
    so EPICS's own threads stop cleanly; this function then does not return.
    """
    environ = dict(os.environ if environ is None else environ)
    try:
        app = make_app(environ)
    except ConfigError as exc:
        print(f"pvflow ioc: {exc}", file=sys.stderr, flush=True)
        return EXIT_CONFIG
    try:
        code = asyncio.run(_serve(app))
    except Exception as exc:  # noqa: BLE001 - last resort: say why, exit non-zero
        log.critical("IOC crashed", exc_info=True)
        log_event(log, logging.CRITICAL, "IOC exits", code=EXIT_FAIL, reason=repr(exc))
        code = EXIT_FAIL
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    if "softioc" in sys.modules:
        # epicsExit runs EPICS's exit handlers (stopping the CA and PVA servers) and exits.
        from softioc import imports

        imports.epicsExit(code)
    return code
