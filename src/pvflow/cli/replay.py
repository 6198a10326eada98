"""`pvflow replay`: send runs a BackgroundWriter backed up to their store after all."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    replay = subparsers.add_parser(
        "replay", help="send backed-up runs (from a BackgroundWriter) to a store")
    replay.add_argument("backup", help="the backup directory the writer named")
    where = replay.add_mutually_exclusive_group(required=True)
    where.add_argument("--tiled", metavar="URI", help="a Tiled server, e.g. http://host:8000")
    where.add_argument("--jsonl", metavar="DIR", help="a directory of JSON lines files")
    replay.add_argument("--api-key", help="Tiled API key (default: $TILED_API_KEY)")
    replay.set_defaults(run=run)


def refused(uri: str) -> None:
    """Raise ``httpx.ConnectError`` at once when nothing listens at ``uri`` (refused, unknown
    host), rather than after Tiled's client has retried for half a minute. A server that
    answers, even slowly or with an error, is left to Tiled's client."""
    import httpx

    try:
        httpx.head(uri, timeout=10.0)
    except httpx.ConnectError:
        raise
    except httpx.HTTPError:
        pass


def run(args: argparse.Namespace) -> int:
    from ..bluesky.targets.replay import replay

    if args.jsonl is not None:
        from ..bluesky.targets.jsonl import JsonLinesTarget

        target: Any = JsonLinesTarget(args.jsonl)
    else:
        import httpx

        from ..bluesky.targets.tiled import tiled_target

        try:
            refused(args.tiled)
            target = tiled_target(args.tiled, api_key=args.api_key)
        except (httpx.HTTPError, OSError) as error:
            print(f"pvflow replay: cannot reach Tiled at {args.tiled}: {error}; the backups "
                  f"in {args.backup} are kept", file=sys.stderr)
            return 1
    try:
        report = replay(args.backup, target)
    except FileNotFoundError as error:
        print(f"pvflow replay: {error}", file=sys.stderr)
        return 2
    for path in report.replayed:
        print(f"replayed {path}")
    for path, reason in report.failed.items():
        print(f"FAILED {path}: {reason}", file=sys.stderr)
    print(f"{report.documents} documents from {len(report.replayed)} file(s); "
          f"{len(report.failed)} file(s) failed")
    return 1 if report.failed else 0
