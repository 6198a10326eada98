"""A Tiled server as a subprocess on a free loopback port: the demo's document store.

Embedded by default: a SQLite catalog and DuckDB tables in one data folder, nothing to set
up. ``readable`` lists directories of external files (a detector's HDF5) it may serve.
For scale, the catalog and the tables may live in PostgreSQL instead (``catalog`` and
``tables`` take ``postgresql://`` URIs). The API key is random per start unless given.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from .network import free_port
from .processes import ServerProcess

READY_LINE = "Uvicorn running on"


class TiledServer(ServerProcess):
    """``tiled serve catalog`` over ``folder``; :attr:`uri` and :attr:`api_key` reach it."""

    def __init__(self, folder: str | Path, *, catalog: str | None = None,
                 tables: str | None = None, api_key: str | None = None,
                 readable: list[str | Path] | None = None, startup_timeout: float = 120.0):
        self.folder = Path(folder).resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "files").mkdir(exist_ok=True)
        self.port = free_port()
        self.api_key = api_key or secrets.token_hex(16)
        self.catalog = catalog or str(self.folder / "catalog.db")
        self.tables = tables or f"duckdb:///{self.folder / 'tables.duckdb'}"
        command = [sys.executable, "-m", "tiled", "serve", "catalog", self.catalog, "--init",
                   "-w", str(self.folder / "files"), "-w", self.tables,
                   *(arg for path in readable or ()
                     for arg in ("-r", str(Path(path).resolve()))),
                   "--api-key", self.api_key, "--host", "127.0.0.1", "--port", str(self.port)]
        super().__init__(command, {}, READY_LINE, name="Tiled server",
                         startup_timeout=startup_timeout, cwd=self.folder, keep_stdin=False)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True) -> TiledServer:
        super().start(wait)
        return self

    def __enter__(self) -> TiledServer:
        return self.start()
