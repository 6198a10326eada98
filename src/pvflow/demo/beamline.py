"""The simulated beamline of ``pvflow demo``: pvflow's own IOCs as subprocesses.

A detector (Diss-compatible, ``pvflow ioc detector``), a laser-sync monitor
(``pvflow ioc sync``) and a fly-scan controller (``pvflow ioc flyscan``), each on its own
free loopback ports: two servers on one UDP port would split the name searches between them.
``env`` lists all three, so one client Context reaches every PV.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass

from .network import free_port, loopback_env
from .processes import ServerProcess

READY_LINE = 'msg="IOC running"'  # logged by pvflow's IOC runner once records are served


@dataclass(frozen=True)
class Prefixes:
    """Where each simulated device's PVs live."""

    detector: str = "DEMO:DET:"
    sync: str = "DEMO:SYNC:"
    flyscan: str = "DEMO:FLY:"


def ioc_settings(prefixes: Prefixes) -> dict[str, dict[str, str]]:
    """Each IOC's configuration variables: small images and short warm-up, so the demo runs
    in seconds; a fly-scan array long enough for any demo scan."""
    return {
        "detector": {"DISS_EPICS_PREFIX": prefixes.detector, "DISSSIM_CHIP_SIZE": "64:48",
                     "DISSSIM_NUM_IMAGES": "1", "DISSSIM_PATTERN": "spot",
                     "DISSSIM_WARMUP": "0.2", "DISS_LOG_LEVEL": "warning"},
        "sync": {"SYNCSTER_PREFIX": prefixes.sync, "SYNCSTER_LOG_LEVEL": "warning",
                 "SYNCSTER_POLL_PERIOD": "0.2"},
        "flyscan": {"FLYSCAN_PREFIX": prefixes.flyscan, "FLYSCAN_NELM": "10000",
                    "FLYSCAN_LOG_LEVEL": "warning"},
    }


class SimulatedBeamline:
    """Starts the three IOCs in parallel and stops them (by PID) on exit, also on Ctrl-C."""

    def __init__(self, prefixes: Prefixes = Prefixes()):
        self.prefixes = prefixes
        self.iocs: dict[str, ServerProcess] = {}
        addresses = []
        for app, settings in ioc_settings(prefixes).items():
            env = loopback_env(free_port(), free_port())
            addresses.append(env["EPICS_CA_ADDR_LIST"])
            self.iocs[app] = ServerProcess([sys.executable, "-m", "pvflow", "ioc", app],
                                           {**env, **settings}, READY_LINE,
                                           name=f"{app} IOC", startup_timeout=120.0,
                                           keep_stdin=False)
        self.env: Mapping[str, str] = {"EPICS_CA_ADDR_LIST": " ".join(addresses),
                                       "EPICS_CA_AUTO_ADDR_LIST": "NO"}
        self._stack = ExitStack()

    def start(self) -> SimulatedBeamline:
        with ExitStack() as starting:
            for ioc in self.iocs.values():
                ioc.start(wait=False)
                starting.callback(ioc.stop)
            for ioc in self.iocs.values():
                ioc.wait_ready()
            self._stack = starting.pop_all()
        return self

    @property
    def pids(self) -> dict[str, int]:
        return {name: ioc.process.pid for name, ioc in self.iocs.items()
                if ioc.process is not None}

    def stop(self) -> None:
        self._stack.close()

    def __enter__(self) -> SimulatedBeamline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
