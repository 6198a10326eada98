"""A real, small filesystem for the processes a test starts: full disks without a mock.

A tmpfs of the given size is mounted over a directory in a mount namespace of its own,
inside a user namespace, so no privilege is needed. Only processes started through
:attr:`SmallDisk.launcher` see it; the test reads their files through :meth:`SmallDisk.outside`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

# Mounts, says so, then holds the namespace open until its stdin closes (no sleep).
_HOLD = 'mount -t tmpfs -o size="$1" small-disk "$2" && echo mounted && exec cat'


class SmallDisk:
    """``directory`` replaced by an empty filesystem of ``megabytes`` for the processes run
    through :attr:`launcher` (they start in ``/``: give them absolute paths)."""

    def __init__(self, directory: Path, megabytes: int) -> None:
        self.directory = Path(directory).resolve()
        self.megabytes = megabytes
        self._holder: subprocess.Popen[str] | None = None

    def __enter__(self) -> SmallDisk:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._holder = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", _HOLD,
             "small-disk", f"{self.megabytes}m", str(self.directory)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self._holder.stdout is not None
        if self._holder.stdout.readline().strip() != "mounted":  # EOF if the mount failed
            self.__exit__()
            raise RuntimeError(f"cannot mount a {self.megabytes} MB tmpfs in a user and mount "
                               "namespace (does this kernel allow user namespaces?)")
        return self

    @property
    def launcher(self) -> list[str]:
        """The command prefix that runs a command with the small disk mounted."""
        assert self._holder is not None
        return ["nsenter", f"--target={self._holder.pid}", "--user", "--mount", "--"]

    def outside(self, path: Path) -> Path:
        """Where a file on the small disk is seen from the test's own namespace."""
        assert self._holder is not None
        return Path(f"/proc/{self._holder.pid}/root") / Path(path).relative_to("/")

    def __exit__(self, *exc: object) -> None:
        holder, self._holder = self._holder, None
        if holder is None:
            return
        assert holder.stdin is not None
        holder.stdin.close()
        try:
            holder.wait(10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait(10)
