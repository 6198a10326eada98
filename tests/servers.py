"""Real servers for tests: the C softIoc (CA, or CA+PVA), started as subprocesses on free ports.

Every server gets its own ports and is stopped by PID. Nothing here sleeps to synchronise: a
server is ready when it prints iocInit's completion line.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pvflow.demo.network import free_port, loopback_env
from pvflow.demo.processes import ServerProcess

READY_LINE = "iocRun: All initialization complete"
epics_env = loopback_env

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

__all__ = ["READY_LINE", "SoftIoc", "epics_env", "free_port"]


class SoftIoc(ServerProcess):
    """The C softIoc from epicscorelibs (CA) or pvxslibs (CA + PVA) running a .db text.

    Restartable on the same ports, so reconnection can be tested against the very same address.
    """

    def __init__(self, db_text: str, *, pva: bool = False, env: Mapping[str, str] | None = None,
                 access_security: str | None = None, startup_timeout: float = 30.0):
        self.ca_port = free_port()
        self.repeater_port = free_port()
        self.pva_port = free_port() if pva else None
        self._dir = tempfile.TemporaryDirectory(prefix="pvflow-ioc-")
        self.db_path = Path(self._dir.name) / "test.db"
        self.db_path.write_text(db_text)
        server_env = loopback_env(self.ca_port, self.repeater_port, self.pva_port)
        server_env.update(env or {})
        if access_security is not None:
            acf = Path(self._dir.name) / "access.acf"
            acf.write_text(access_security)
            server_env["PVFLOW_TEST_ACF"] = str(acf)
        module = "pvxslibs.ioc" if pva else "epicscorelibs.ioc"
        super().__init__([sys.executable, "-c", _LAUNCHER, module, "-d", str(self.db_path)],
                         server_env, READY_LINE, name="softIoc", startup_timeout=startup_timeout)

    def shell(self, command: str) -> None:
        """Run an iocsh command (e.g. ``dbpf("T:ai", "3")``) in the IOC's Python console."""
        self.write(f"ioc({command!r})\n")

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __exit__(self, *exc: object) -> None:
        self.close()
