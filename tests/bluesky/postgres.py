"""A throw-away PostgreSQL cluster on a free loopback port, for Tiled-on-PostgreSQL tests.

initdb refuses to run as root, so as root the cluster belongs to the ``postgres`` user (run
through ``runuser``) in a temporary directory that user owns. Stopped with ``pg_ctl stop``
(which signals the postmaster's PID) and removed at exit.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from pvflow.demo.network import free_port


def find_initdb() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve()
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda path: int(Path(path).parts[-3]) if
                        Path(path).parts[-3].isdigit() else 0)
    return Path(candidates[-1]) if candidates else None


class PostgresCluster:
    """``with PostgresCluster() as cluster: cluster.uri("dbname")``."""

    def __init__(self, databases: tuple[str, ...] = ()):
        initdb = find_initdb()
        if initdb is None:
            raise FileNotFoundError("initdb not found (PATH, /usr/lib/postgresql/*/bin)")
        self.bin = initdb.parent
        self.port = free_port()
        self.databases = databases
        self.directory = Path(tempfile.mkdtemp(prefix="pvflow-pg-"))
        self.data = self.directory / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command: str) -> None:
        result = subprocess.run([*self._as, *command], capture_output=True, text=True,
                                timeout=120, cwd=self.directory)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n"
                               f"{result.stdout}\n{result.stderr}")

    def uri(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> PostgresCluster:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "-A", "trust", "--no-sync", "-E", "UTF8")
        options = (f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off")
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                      "-l", str(self.directory / "server.log"), "-w", "-t", "60", "start")
            for database in self.databases:
                self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                          "-U", "postgres", database)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                      "stop")
        shutil.rmtree(self.directory, ignore_errors=True)
