"""pvflow IOC apps as subprocesses on free ports, for the IOC tests and benchmarks.

Readiness is the app's own ``msg="IOC running"`` log line; the process is stopped by its PID.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from pvflow.demo.network import free_port, loopback_env
from pvflow.demo.processes import ServerProcess

READY_LINE = 'msg="IOC running"'
ROOT = Path(__file__).resolve().parents[2]


def unique_prefix() -> str:
    """A record prefix no other test uses, so stray searches can never find a wrong IOC."""
    return "T" + uuid.uuid4().hex[:8].upper() + ":"


class IocProcess(ServerProcess):
    """``python <command>`` with its own CA and PVA ports and the given environment."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None = None, *,
                 startup_timeout: float = 90.0, name: str = "IOC",
                 launcher: Sequence[str] = ()):
        self.ca_port = free_port()
        self.repeater_port = free_port()
        self.pva_port = free_port()
        self.pva_broadcast_port = free_port()
        self.epics_env = loopback_env(self.ca_port, self.repeater_port, self.pva_port,
                                      self.pva_broadcast_port)
        python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        super().__init__([*launcher, sys.executable, *command],
                         {**self.epics_env, **(env or {}), "PYTHONPATH": python_path},
                         READY_LINE, name=name, startup_timeout=startup_timeout, cwd=ROOT,
                         keep_stdin=False)

    def start(self, wait: bool = True) -> IocProcess:
        super().start(wait)
        return self

    def __enter__(self) -> IocProcess:
        return self.start()


class RepeaterProcess:
    """``caproto-repeater`` on a given port: libca (pyepics) clients need a CA repeater."""

    def __init__(self, port: int):
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RepeaterProcess:
        repeater = Path(sys.executable).with_name("caproto-repeater")
        environ = {**os.environ, "EPICS_CA_REPEATER_PORT": str(self.port)}
        self.process = subprocess.Popen([str(repeater), "-q"], env=environ,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
