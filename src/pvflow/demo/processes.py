"""Server processes the demo (and the test suite) starts: on free ports, ready on a printed
line, stopped by PID (also on Ctrl-C), with their output kept for waiting and error messages.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path


class ServerProcess:
    """A server subprocess that announces readiness by printing ``ready_line``.

    With ``keep_stdin`` its stdin stays open (the EPICS IOC shells exit on end of input) and
    :meth:`write` types at its console. Output lines are kept in :attr:`lines`; waiting for
    one blocks on a condition signalled by the reader thread, never on a sleep.
    """

    def __init__(self, command: Sequence[str], env: Mapping[str, str], ready_line: str,
                 name: str = "server", startup_timeout: float = 30.0,
                 cwd: str | Path | None = None, keep_stdin: bool = True):
        self.command = list(command)
        self.env = dict(env)
        self.ready_line = ready_line
        self.name = name
        self.startup_timeout = startup_timeout
        self.cwd = cwd
        self.keep_stdin = keep_stdin
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def start(self, wait: bool = True) -> ServerProcess:
        with self._changed:
            self.lines = []
            self._ended = False
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.PIPE if self.keep_stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env={**os.environ, **self.env}, cwd=self.cwd)
        threading.Thread(target=self._read_output, args=(self.process,),
                         name=f"{self.name}-output", daemon=True).start()
        if wait:
            self.wait_ready()
        return self

    def _read_output(self, process: subprocess.Popen[str]) -> None:
        # After a restart the previous run's reader may still be draining: it must touch
        # nothing of the new run, hence the ``process is self.process`` checks.
        assert process.stdout is not None
        for line in process.stdout:
            with self._changed:
                if process is self.process:
                    self.lines.append(line)
                    self._changed.notify_all()
        process.stdout.close()
        with self._changed:
            if process is self.process:
                self._ended = True
                self._changed.notify_all()

    def _find(self, text: str) -> str | None:
        return next((line for line in self.lines if text in line), None)

    def wait_ready(self) -> None:
        """Return once the ready line is printed; stop and raise with the output otherwise."""
        with self._changed:
            self._changed.wait_for(lambda: self._ended or self._find(self.ready_line),
                                   self.startup_timeout)
            ready = self._find(self.ready_line) is not None and not self._ended
        if not ready:
            self.stop()
            raise RuntimeError(f"{self.name} did not start:\n" + "".join(self.lines[-40:]))

    def wait_for_line(self, text: str, timeout: float = 60.0) -> str:
        """The first output line containing ``text``; AssertionError with the output if none
        comes within ``timeout`` or the process ends without it."""
        with self._changed:
            self._changed.wait_for(lambda: self._ended or self._find(text), timeout)
            found = self._find(text)
        if found is None:
            raise AssertionError(f"{self.name}: no line with {text!r} in its output:\n"
                                 + self.output[-4000:])
        return found

    def wait_exit(self, timeout: float = 60.0) -> int:
        """The exit code, once the process has ended and its output is all read."""
        if self.process is None:
            raise RuntimeError(f"{self.name} is not running")
        code = self.process.wait(timeout)
        with self._changed:
            self._changed.wait_for(lambda: self._ended, 10)
        return code

    def write(self, text: str) -> None:
        """Type ``text`` at the server's console."""
        if self.process is None or self.process.stdin is None:
            raise RuntimeError(f"{self.name} is not running with its console open")
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def stop(self) -> int | None:
        """Terminate by PID (kill after 10 s) and read its last output; the exit code, or
        None if it was not running."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        with self._changed:
            self._changed.wait_for(lambda: self._ended, 10)  # its farewell lines included
            self.process = None
            self._ended = True
        if process.stdin is not None:
            process.stdin.close()
        return process.returncode

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
