"""An isolated EPICS network for an upstream test session: free loopback ports in
``os.environ`` and a CA repeater of our own, stopped by PID.

Upstream suites start their IOCs as subprocesses that inherit ``os.environ``, so the ports are
set there before anything imports an EPICS client.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from tests.servers import epics_env, free_port

REPEATER_READY = "Repeater is listening"


def isolate() -> dict[str, str]:
    """Point every EPICS variable of this process (and its children) at fresh loopback ports."""
    environment = epics_env(free_port(), free_port(), free_port(), free_port())
    os.environ.update(environment)
    return environment


class Repeater:
    """caproto's CA repeater on ``EPICS_CA_REPEATER_PORT`` (libca insists on one)."""

    def __init__(self, startup_timeout: float = 30.0):
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self) -> subprocess.Popen[str]:
        command = [str(Path(sys.executable).parent / "caproto-repeater"), "-v", "--no-color"]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, env=dict(os.environ))
        ready = threading.Event()
        threading.Thread(target=self._read, args=(self.process, ready), daemon=True).start()
        if not ready.wait(self.startup_timeout) or not any(REPEATER_READY in line
                                                           for line in self.output):
            self.stop()
            raise RuntimeError("caproto-repeater did not start:\n" + "".join(self.output))
        return self.process

    def _read(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            if REPEATER_READY in line:
                ready.set()
        ready.set()

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
        if process.stdout is not None:
            process.stdout.close()
