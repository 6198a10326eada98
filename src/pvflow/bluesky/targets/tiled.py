"""Tiled as a target: bluesky's ``TiledWriter``, made safe to retry and to replay.

``TiledWriter`` creates a run's container at the start document; a second start for the same
uid (a retry after a lost answer, or a replayed backup of a run Tiled holds part of) would
fail with a conflict. Here a start document first removes what Tiled holds of that run, so a
replayed run ends up stored exactly once.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

DEFAULT_BATCH_SIZE = 1000  # rows per append; the writer's merged pages are up to 10 000


class TiledTarget:
    """``TiledTarget(client)``: writes documents with ``TiledWriter`` into ``client``."""

    def __init__(self, client: Any, *, batch_size: int = DEFAULT_BATCH_SIZE):
        from bluesky.callbacks.tiled_writer import TiledWriter

        self.client = client
        self._writer = TiledWriter(client, batch_size=batch_size)

    def __call__(self, name: str, doc: dict[str, Any]) -> None:
        if name == "start" and doc["uid"] in self.client:
            self.client.delete_contents([doc["uid"]], recursive=True)
        self._writer(name, doc)

    @property
    def replay_option(self) -> str:
        """How ``pvflow replay`` names this store."""
        return f"--tiled {shlex.quote(self.client.uri)}"

    def __repr__(self) -> str:
        return f"TiledTarget({self.client.uri})"


def connect(uri: str, api_key: str | None = None) -> Any:
    """A Tiled client for ``uri``; ``api_key`` defaults to ``$TILED_API_KEY``."""
    from tiled.client import from_uri

    return from_uri(uri, api_key=api_key or os.environ.get("TILED_API_KEY"))


def tiled_target(uri: str, *, api_key: str | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> TiledTarget:
    return TiledTarget(connect(uri, api_key), batch_size=batch_size)
