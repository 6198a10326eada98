"""Server processes the demo starts: started on free ports, ready on a printed line, stopped
by PID (also on Ctrl-C), with their output kept for error messages."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping, Sequence


class ServerProcess:
    """A server subprocess that announces readiness by printing ``ready_line``.

    Its stdin stays open: the EPICS IOC shells exit on end of input.
    """

    def __init__(self, command: Sequence[str], env: Mapping[str, str], ready_line: str,
                 name: str = "server", startup_timeout: float = 30.0):
        self.command = list(command)
        self.env = dict(env)
        self.ready_line = ready_line
        self.name = name
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self) -> ServerProcess:
        self.output = []
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env={**os.environ, **self.env})
        ready = threading.Event()
        threading.Thread(target=self._read_output, args=(self.process, ready),
                         name=f"{self.name}-output", daemon=True).start()
        started = ready.wait(self.startup_timeout) and any(
            self.ready_line in line for line in self.output)
        if not started:
            self.stop()
            raise RuntimeError(f"{self.name} did not start:\n" + "".join(self.output[-40:]))
        return self

    def _read_output(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            if self.ready_line in line:
                ready.set()
        ready.set()  # end of output: the process died, start() reports what it printed

    def write(self, text: str) -> None:
        """Type ``text`` at the server's console."""
        if self.process is None or self.process.stdin is None:
            raise RuntimeError(f"{self.name} is not running")
        self.process.stdin.write(text)
        self.process.stdin.flush()

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
            if stream is not None:
                stream.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
