"""A pvflow IOC app as a subprocess on free ports, for the fly-scan and sync IOC tests.

Readiness is the app's own ``msg="IOC running"`` log line; the process is stopped by its PID.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.servers import epics_env, free_port

READY_LINE = 'msg="IOC running"'
ROOT = Path(__file__).resolve().parents[3]


def unique_prefix() -> str:
    """A record prefix no other test uses, so stray searches can never find a wrong IOC."""
    return "T" + uuid.uuid4().hex[:8].upper() + ":"


class IocProcess:
    """``python -m <module>`` with its own CA (and PVA) ports and the given environment."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None = None, *,
                 startup_timeout: float = 90.0):
        self.command = list(command)
        self.ca_port = free_port()
        self.repeater_port = free_port()
        self.pva_port = free_port()
        self.pva_broadcast_port = free_port()
        self.epics_env = epics_env(self.ca_port, self.repeater_port, self.pva_port,
                                   self.pva_broadcast_port)
        self.env = {**self.epics_env, **(env or {})}
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._ended = threading.Event()

    def start(self, wait: bool = True) -> IocProcess:
        python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        environ = {**os.environ, **self.env, "PYTHONPATH": python_path}
        self.process = subprocess.Popen(
            [sys.executable, *self.command], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ, cwd=ROOT)
        threading.Thread(target=self._read, daemon=True).start()
        if wait:
            self.wait_ready()
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if READY_LINE in line:
                self._ready.set()
        self._ended.set()
        self._ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self) -> None:
        if not self._ready.wait(self.startup_timeout) or self._ended.is_set():
            output = self.output
            self.stop()
            raise RuntimeError(f"IOC {self.command} did not start:\n" + output[-4000:])

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        self._ended.wait(10)
        return code

    def wait_for_line(self, text: str, timeout: float = 60.0) -> str:
        """The first output line containing ``text``; fails with the output after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self._ended.is_set():
                break
            self._ended.wait(0.05)
        raise AssertionError(f"no line with {text!r} in IOC output:\n{self.output[-4000:]}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(20)
        self._ended.wait(10)

    def __enter__(self) -> IocProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
