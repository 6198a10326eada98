"""pvRequest: the structure a client sends with every operation's INIT (codec layer, no I/O).

``"field(value,alarm,timeStamp)record[queueSize=100,pipeline=true]"`` selects fields and sets
server options, as in p4p and pvxs. A bare list (``"value,alarm"``) means ``field(...)``; an
empty text asks for every field.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from .pvdata import STRING, FieldType, structure, write_type, write_value

_PART = re.compile(r"\s*(field|record|putField|getField)\s*([(\[])")


def _tree(paths: list[str]) -> FieldType:
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for name in path.split("."):
            if not name.isidentifier():
                raise ValueError(f"{path!r} is not a field path")
            node = node.setdefault(name, {})

    def build(node: dict[str, Any]) -> FieldType:
        return structure("", **{name: build(child) for name, child in node.items()})

    return build(tree)


def _closing(text: str, start: int, opening: str) -> int:
    closing = ")" if opening == "(" else "]"
    end = text.find(closing, start)
    if end < 0:
        raise ValueError(f"pvRequest {text!r}: {opening!r} at {start} is never closed")
    return end


def parse(text: str) -> tuple[list[str], dict[str, str]]:
    """The field paths and record options of a pvRequest text."""
    text = text.strip()
    paths: list[str] = []
    options: dict[str, str] = {}
    if text and not _PART.match(text):
        text = f"field({text})"
    position = 0
    while position < len(text):
        match = _PART.match(text, position)
        if match is None:
            if text[position:].strip():
                raise ValueError(f"pvRequest {text!r}: cannot parse from {text[position:]!r}")
            break
        end = _closing(text, match.end(), match.group(2))
        body = text[match.end():end]
        if match.group(1) == "record":
            for item in filter(None, (part.strip() for part in body.split(","))):
                key, equals, value = item.partition("=")
                if not equals:
                    raise ValueError(f"pvRequest option {item!r} is not KEY=VALUE")
                options[key.strip()] = value.strip()
        else:
            paths.extend(filter(None, (part.strip() for part in body.split(","))))
        position = end + 1
    return paths, options


@functools.lru_cache(maxsize=256)
def encode(text: str = "", **options: object) -> bytes:
    """The pvRequest type and value, ready to follow an INIT's sub-command byte. Kept per
    request: a bulk read of many channels sends the same few requests thousands of times."""
    paths, parsed = parse(text)
    parsed.update({key: str(value).lower() if isinstance(value, bool) else str(value)
                   for key, value in options.items()})
    members: dict[str, FieldType] = {}
    value: dict[str, object] = {}
    if paths:
        members["field"] = _tree(paths)
    if parsed:
        option_type = structure("", **{key: FieldType(STRING) for key in parsed})
        members["record"] = structure("", _options=option_type)
        value["record"] = {"_options": parsed}
    request = structure("", **members)
    return write_type(request) + write_value(request, value)
