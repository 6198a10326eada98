"""Real servers for tests: the C softIoc (CA, or CA+PVA), started as subprocesses on free ports.

Every server gets its own ports and is stopped by PID. Nothing here sleeps to synchronise: a
server is ready when it prints iocInit's completion line.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

READY_LINE = "iocRun: All initialization complete"

# Runs the module as `python -m` would, with access security loaded before iocInit (neither
# module has an -a option; both start through epicscorelibs.ioc, which is patched in place).
_LAUNCHER = """
import os, runpy, sys
import epicscorelibs.ioc as core
module = sys.argv.pop(1)
acf = os.environ.get("PVFLOW_TEST_ACF")
if acf:
    original = core.iocInit
    def init():
        core.ioc('asSetFilename("%s")' % acf)
        return original()
    core.iocInit = init
if module == core.__name__:
    core.main()
else:
    runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (CA and PVA use one number for both)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port found")


def epics_env(ca_port: int, repeater_port: int, pva_port: int | None = None,
              pva_broadcast_port: int | None = None) -> dict[str, str]:
    """The EPICS variables that confine a server and its clients to loopback and these ports."""
    env = {
        "EPICS_CA_ADDR_LIST": f"127.0.0.1:{ca_port}",
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CA_SERVER_PORT": str(ca_port),
        "EPICS_CA_REPEATER_PORT": str(repeater_port),
        "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_CA_MAX_ARRAY_BYTES": str(64 * 1024 * 1024),
    }
    if pva_port is not None:
        bport = pva_broadcast_port or pva_port
        env.update({
            "EPICS_PVA_SERVER_PORT": str(pva_port),
            "EPICS_PVAS_SERVER_PORT": str(pva_port),
            "EPICS_PVA_BROADCAST_PORT": str(bport),
            "EPICS_PVAS_BROADCAST_PORT": str(bport),
            "EPICS_PVA_ADDR_LIST": f"127.0.0.1:{bport}",
            "EPICS_PVA_AUTO_ADDR_LIST": "NO",
            "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
        })
    return env


class SoftIoc:
    """The C softIoc from epicscorelibs (CA) or pvxslibs (CA + PVA) running a .db text.

    Restartable on the same ports, so reconnection can be tested against the very same address.
    """

    def __init__(self, db_text: str, *, pva: bool = False, env: Mapping[str, str] | None = None,
                 access_security: str | None = None, startup_timeout: float = 30.0):
        self.ca_port = free_port()
        self.repeater_port = free_port()
        self.pva_port = free_port() if pva else None
        self.env = epics_env(self.ca_port, self.repeater_port, self.pva_port)
        if env:
            self.env.update(env)
        self._module = "pvxslibs.ioc" if pva else "epicscorelibs.ioc"
        self._dir = tempfile.TemporaryDirectory(prefix="pvflow-ioc-")
        self.db_path = Path(self._dir.name) / "test.db"
        self.db_path.write_text(db_text)
        if access_security is not None:
            acf = Path(self._dir.name) / "access.acf"
            acf.write_text(access_security)
            self.env["PVFLOW_TEST_ACF"] = str(acf)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    def start(self) -> SoftIoc:
        full_env = {**os.environ, **self.env}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, self._module, "-d", str(self.db_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, env=full_env,
        )
        ready = threading.Event()
        threading.Thread(target=self._read_output, args=(self.process, ready), daemon=True).start()
        started = ready.wait(self.startup_timeout) and any(READY_LINE in line
                                                          for line in self.output)
        if not started:
            self.stop()
            raise RuntimeError("softIoc did not start:\n" + "".join(self.output[-40:]))
        return self

    def _read_output(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            if READY_LINE in line:
                ready.set()
        ready.set()  # EOF: the process died; start() reports what it printed

    def shell(self, command: str) -> None:
        """Run an iocsh command (e.g. ``dbpf("T:ai", "3")``) in the IOC's Python console."""
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(f"ioc({command!r})\n")
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
        if process.stdin:
            process.stdin.close()
        if process.stdout:
            process.stdout.close()

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> SoftIoc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
