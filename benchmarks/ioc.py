"""The benchmark servers: one C softIoc (CA + PVA, from pvxslibs), one CA repeater, and a p4p
server with an NTNDArray image (see ``image_server.py``).

Every client is measured against the very same IOC process in one run, so the ratios between
clients do not depend on how busy the machine was when the IOC started. The record names are
fixed here; the client workers import them rather than receiving them on a command line. The
two PVA servers have a port each, both in the clients' ``EPICS_PVA_ADDR_LIST``.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy

from pvflow.demo.network import free_port, loopback_env
from pvflow.demo.processes import ServerProcess

from .image_server import IMAGE_NAME
from .image_server import READY_LINE as IMAGE_READY_LINE
from .rawca import write_arrays

REPOSITORY = Path(__file__).resolve().parent.parent

SCALAR_COUNT = 1000
SMALL_WAVEFORM_LENGTH = 1_000
LARGE_WAVEFORM_LENGTH = 1_000_000

INPUT_NAMES = [f"bench:ai:{index:04d}" for index in range(SCALAR_COUNT)]
OUTPUT_NAMES = [f"bench:ao:{index:04d}" for index in range(SCALAR_COUNT)]
SMALL_WAVEFORM = "bench:waveform:1e3"
LARGE_WAVEFORM = "bench:waveform:1e6"
FLOOD_RECORD = "bench:flood"
IMAGE = IMAGE_NAME
READY_LINE = "iocRun: All initialization complete"
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


class BenchServer:
    """The IOC plus repeater and image server, with the waveforms filled before any client
    connects."""

    def __init__(self) -> None:
        self.ca_port = free_port()
        image_port = free_port()
        # What every client process gets too: loopback only, these servers' ports only.
        self.environment = loopback_env(self.ca_port, free_port(), free_port())
        self.environment["EPICS_PVA_ADDR_LIST"] += f" 127.0.0.1:{image_port}"
        self._directory = tempfile.TemporaryDirectory(prefix="pvflow-bench-")
        database = Path(self._directory.name) / "bench.db"
        database.write_text(database_text())
        self.ioc = ServerProcess([sys.executable, "-m", "pvxslibs.ioc", "-d", str(database)],
                                 self.environment, READY_LINE, name="benchmark IOC")
        self.repeater = ServerProcess(
            [str(Path(sys.executable).with_name("caproto-repeater"))], self.environment,
            REPEATER_READY_LINE, name="caproto-repeater")
        self.image_server = ServerProcess(
            [sys.executable, "-m", "benchmarks.image_server", str(image_port)], {},
            IMAGE_READY_LINE, name="image server", cwd=REPOSITORY)

    def start(self) -> BenchServer:
        try:
            self.repeater.start()
            self.ioc.start()
            self.image_server.start()
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
        self.image_server.stop()
        self.ioc.stop()
        self.repeater.stop()
        self._directory.cleanup()

    def __enter__(self) -> BenchServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
