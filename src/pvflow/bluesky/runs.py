"""Which run a bluesky document belongs to (pure bookkeeping, no I/O).

Only ``start`` and ``stop`` name their run directly; a page names its descriptor, a datum its
resource. Writers that keep one file (or one backup) per run follow those links here.
"""

from __future__ import annotations

from typing import Any


class RunIndex:
    """Learns the links as documents pass; ``run_of`` answers for any document seen so far."""

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}  # descriptor / resource uid -> run uid

    def run_of(self, name: str, doc: dict[str, Any]) -> str | None:
        """The run uid of ``doc`` (recording the links it creates), or None if its parent
        was never seen."""
        if name == "start":
            return str(doc["uid"])
        if name in ("stop", "descriptor", "resource", "stream_resource"):
            run = doc.get("run_start")
            if run is not None and name != "stop":
                self._owners[doc["uid"]] = run
            return run
        if name in ("event", "event_page", "stream_datum"):
            return self._owners.get(doc["descriptor"])
        if name == "datum":
            return self._owners.get(doc["resource"])
        if name == "datum_page":
            resource = doc["resource"]
            return self._owners.get(resource[0] if isinstance(resource, list) else resource)
        return None

    def forget(self, run: str) -> None:
        """Drop the links of a finished run, so a long session does not grow without end."""
        for uid in [uid for uid, owner in self._owners.items() if owner == run]:
            del self._owners[uid]
