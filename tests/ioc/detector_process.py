"""The detector IOC as a subprocess on free ports, for tests and benchmarks.

Readiness is the IOC's own "IOC running" log line; the process is stopped by its PID.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from tests.servers import epics_env, free_port

READY_LINE = 'msg="IOC running"'
ROOT = Path(__file__).resolve().parents[2]


class DetectorProcess:
    """``python -m pvflow ioc detector`` with its own prefix and CA/PVA ports."""

    def __init__(self, env: Mapping[str, str] | None = None, *, startup_timeout: float = 90.0):
        self.prefix = "T" + uuid.uuid4().hex[:8].upper() + ":"
        self.ca_port = free_port()
        self.repeater_port = free_port()
        self.pva_port = free_port()
        self.pva_broadcast_port = free_port()
        self.epics_env = epics_env(self.ca_port, self.repeater_port, self.pva_port,
                                   self.pva_broadcast_port)
        self.env = {**self.epics_env, "DISS_EPICS_PREFIX": self.prefix,
                    "DISS_DEVICE_BACKEND": "sim", "DISSSIM_WARMUP": "0.1"}
        self.env.update(env or {})
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._ended = threading.Event()

    def start(self, wait: bool = True) -> DetectorProcess:
        python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        environ = {**os.environ, **self.env, "PYTHONPATH": python_path}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pvflow", "ioc", "detector"], stdin=subprocess.DEVNULL,
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

    def wait_ready(self) -> None:
        if not self._ready.wait(self.startup_timeout) or self._ended.is_set():
            output = self.output
            self.stop()
            raise RuntimeError("detector IOC did not start:\n" + output[-4000:])

    def wait_exit(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        self._ended.wait(10)
        return code

    def wait_for_line(self, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            if self._ended.is_set():
                break
            time.sleep(0.05)
        raise AssertionError(f"no log line with {text!r}:\n{self.output[-4000:]}")

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def pv(self, suffix: str) -> str:
        return self.prefix + suffix

    def stop(self) -> int | None:
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)
        return process.returncode

    def __enter__(self) -> DetectorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
