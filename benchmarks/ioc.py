"""The benchmark server: one C softIoc (CA + PVA, from pvxslibs) and one CA repeater.

Every client is measured against the very same IOC process in one run, so the ratios between
clients do not depend on how busy the machine was when the IOC started. The record names are
fixed here; the client workers import them rather than receiving them on a command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy

from tests.servers import READY_LINE, epics_env, free_port

from .rawca import write_arrays

SCALAR_COUNT = 1000
SMALL_WAVEFORM_LENGTH = 1_000
LARGE_WAVEFORM_LENGTH = 1_000_000

INPUT_NAMES = [f"bench:ai:{index:04d}" for index in range(SCALAR_COUNT)]
OUTPUT_NAMES = [f"bench:ao:{index:04d}" for index in range(SCALAR_COUNT)]
SMALL_WAVEFORM = "bench:waveform:1e3"
LARGE_WAVEFORM = "bench:waveform:1e6"
FLOOD_RECORD = "bench:flood"
REPEATER_READY_LINE = "Repeater is listening"


def database_text() -> str:
    """The .db: scalars with distinct values (so a mixed-up reply would show), two waveforms, the flood ao."""
    records = [f'record(ai, "{name}") {{ field(VAL, "{index}") field(PINI, "YES") }}'
               for index, name in enumerate(INPUT_NAMES)]
    records += [f'record(ao, "{name}") {{ field(VAL, "{index}") field(PINI, "YES") }}'
                for index, name in enumerate(OUTPUT_NAMES)]
    records += [
        f'record(waveform, "{name}") {{ field(FTVL, "DOUBLE") field(NELM, "{length}") }}'
        for name, length in ((SMALL_WAVEFORM, SMALL_WAVEFORM_LENGTH),
                             (LARGE_WAVEFORM, LARGE_WAVEFORM_LENGTH))
    ]
    records.append(f'record(ao, "{FLOOD_RECORD}") {{ field(VAL, "0") field(PINI, "YES") }}')
    return "\n".join(records) + "\n"


class ServerProcess:
    """A server subprocess that is ready once it prints ``ready_line``, and is stopped by PID.

    Its stdin stays open: the IOC shell exits at end of input.
    """

    def __init__(self, command: list[str], ready_line: str, environment: dict[str, str],
                 startup_timeout: float = 30.0):
        self.command = command
        self.ready_line = ready_line
        self.environment = environment
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self) -> ServerProcess:
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env={**os.environ, **self.environment})
        ready = threading.Event()
        threading.Thread(target=self._read_output, args=(self.process, ready), daemon=True).start()
        if not ready.wait(self.startup_timeout) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError(f"{self.command[-1]} did not start:\n" + "".join(self.output[-30:]))
        return self

    def _read_output(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            if self.ready_line in line:
                ready.set()
        ready.set()  # end of output: the process died, and start() says so

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for stream in (process.stdin, process.stdout):
            if stream:
                stream.close()


class BenchServer:
    """The IOC plus repeater, with the waveforms filled before any client connects."""

    def __init__(self) -> None:
        self.ca_port = free_port()
        # What every client process gets too: loopback only, this IOC's ports only.
        self.environment = epics_env(self.ca_port, free_port(), free_port())
        self._directory = tempfile.TemporaryDirectory(prefix="pvflow-bench-")
        database = Path(self._directory.name) / "bench.db"
        database.write_text(database_text())
        self.ioc = ServerProcess([sys.executable, "-m", "pvxslibs.ioc", "-d", str(database)],
                                 READY_LINE, self.environment)
        self.repeater = ServerProcess(
            [str(Path(sys.executable).with_name("caproto-repeater"))], REPEATER_READY_LINE,
            self.environment)

    def start(self) -> BenchServer:
        try:
            self.repeater.start()
            self.ioc.start()
            self._fill_waveforms()
        except BaseException:
            self.close()
            raise
        return self

    def _fill_waveforms(self) -> None:
        """Write every element, so a read returns the full length whatever count a client asks."""
        write_arrays(self.ca_port, {
            SMALL_WAVEFORM: numpy.arange(SMALL_WAVEFORM_LENGTH, dtype=float),
            LARGE_WAVEFORM: numpy.arange(LARGE_WAVEFORM_LENGTH, dtype=float),
        })

    def close(self) -> None:
        self.ioc.stop()
        self.repeater.stop()
        self._directory.cleanup()

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
