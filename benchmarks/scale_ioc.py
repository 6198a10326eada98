"""The servers of the scale benchmark: K C softIocs (CA + PVA, from pvxslibs) that between them
hold N ``ai`` records, names interleaved (name i lives on IOC i mod K), each IOC on ports of its
own, all of them in the clients' address lists, plus one CA repeater for libca.

Record i holds the value i, so a reply delivered to the wrong name shows as a wrong value.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from pvflow.demo.network import free_port, loopback_env
from pvflow.demo.processes import ServerProcess

READY_LINE = "iocRun: All initialization complete"


def scale_names(count: int) -> list[str]:
    return [f"sc:{index:06d}" for index in range(count)]


def database_text(names: list[str], first: int, step: int) -> str:
    return "".join(f'record(ai, "{names[index]}") {{ field(VAL, "{index}") field(PINI, "YES") }}\n'
                   for index in range(first, len(names), step))


class ScaleServers:
    """``iocs`` softIocs sharing ``count`` records; ``environment`` is what clients get."""

    def __init__(self, count: int, iocs: int) -> None:
        self.count = count
        self._directory = tempfile.TemporaryDirectory(prefix="pvflow-scale-")
        self._ports_taken: set[int] = set()
        self.repeater_port = self._free_port()
        names = scale_names(count)
        self.databases = []
        for index in range(iocs):
            database = Path(self._directory.name) / f"scale{index}.db"
            database.write_text(database_text(names, index, iocs))
            self.databases.append(database)
        self.iocs: list[ServerProcess] = [self._ioc(index) for index in range(iocs)]
        self.repeater = ServerProcess(
            [str(Path(sys.executable).with_name("caproto-repeater"))],
            loopback_env(self._free_port(), self.repeater_port), "Repeater is listening",
            name="caproto-repeater")

    def _free_port(self) -> int:
        """A free port none of these servers has taken yet."""
        while (port := free_port()) in self._ports_taken:
            pass
        self._ports_taken.add(port)
        return port

    def _ioc(self, index: int) -> ServerProcess:
        environment = loopback_env(self._free_port(), self.repeater_port, self._free_port())
        return ServerProcess(
            [sys.executable, "-m", "pvxslibs.ioc", "-d", str(self.databases[index])],
            environment, READY_LINE, name=f"scale IOC {index}", startup_timeout=300.0)

    @property
    def environment(self) -> dict[str, str]:
        """What every client gets: all the IOCs in its address lists, loopback only."""
        first = self.iocs[0].env
        environment = loopback_env(int(first["EPICS_CA_SERVER_PORT"]), self.repeater_port,
                                   int(first["EPICS_PVA_SERVER_PORT"]))
        environment["EPICS_CA_ADDR_LIST"] = " ".join(
            f"127.0.0.1:{ioc.env['EPICS_CA_SERVER_PORT']}" for ioc in self.iocs)
        environment["EPICS_PVA_ADDR_LIST"] = " ".join(
            f"127.0.0.1:{ioc.env['EPICS_PVA_SERVER_PORT']}" for ioc in self.iocs)
        return environment

    def start(self) -> ScaleServers:
        try:
            self.repeater.start()
            for ioc in self.iocs:
                ioc.start(wait=False)
            for index in range(len(self.iocs)):
                self._wait(index)
        except BaseException:
            self.close()
            raise
        return self

    def _wait(self, index: int) -> None:
        """Ready, or started again on new ports: a port found free can be taken by another
        program before the IOC binds it (rsrv then reports "No TCP server started")."""
        for _ in range(3):
            try:
                self.iocs[index].wait_ready()
                return
            except RuntimeError:
                self.iocs[index] = self._ioc(index)
                self.iocs[index].start(wait=False)
        self.iocs[index].wait_ready()

    def close(self) -> None:
        for ioc in self.iocs:
            ioc.stop()
        self.repeater.stop()
        self._directory.cleanup()

    def __enter__(self) -> ScaleServers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
