"""An isolated EPICS network for an upstream test session: free loopback ports in
``os.environ`` and a CA repeater of our own, stopped by PID.

Upstream suites start their IOCs as subprocesses that inherit ``os.environ``, so the ports are
set there before anything imports an EPICS client.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pvflow.demo.processes import ServerProcess
from tests.servers import epics_env, free_port

REPEATER_READY = "Repeater is listening"


def isolate() -> dict[str, str]:
    """Point every EPICS variable of this process (and its children) at fresh loopback ports."""
    environment = epics_env(free_port(), free_port(), free_port(), free_port())
    os.environ.update(environment)
    return environment


class Repeater(ServerProcess):
    """caproto's CA repeater on ``EPICS_CA_REPEATER_PORT`` (libca insists on one)."""

    def __init__(self, startup_timeout: float = 30.0):
        command = [str(Path(sys.executable).parent / "caproto-repeater"), "-v", "--no-color"]
        super().__init__(command, {}, REPEATER_READY, name="caproto-repeater",
                         startup_timeout=startup_timeout, keep_stdin=False)

    def start(self, wait: bool = True) -> subprocess.Popen[str]:  # type: ignore[override]
        """Start (in ``os.environ``'s network) and return the process, for caproto's helpers."""
        super().start(wait)
        assert self.process is not None
        return self.process
