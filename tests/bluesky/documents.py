"""Check a run's documents with event-model's own schemas plus its cross-document rules."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from event_model import DocumentNames, schema_validators


def validate_run(documents: list[tuple[str, dict[str, Any]]]) -> None:
    """Every document against its schema; every page's keys equal its descriptor's; equal
    column lengths; one stream name, one set of data keys."""
    descriptors: dict[str, dict[str, Any]] = {}
    keys_by_stream: dict[str, set[str]] = defaultdict(set)
    for name, doc in documents:
        schema_validators[DocumentNames[name]].validate(doc)
        if name == "descriptor":
            descriptors[doc["uid"]] = doc
            keys = set(doc["data_keys"])
            assert keys_by_stream.setdefault(doc["name"], keys) == keys
        elif name == "event_page":
            keys = set(descriptors[doc["descriptor"]]["data_keys"])
            assert set(doc["data"]) == set(doc["timestamps"]) == keys
            lengths = {len(column) for column in (*doc["data"].values(),
                                                  *doc["timestamps"].values())}
            assert lengths == {len(doc["seq_num"])}
    assert documents[0][0] == "start" and documents[-1][0] == "stop"
