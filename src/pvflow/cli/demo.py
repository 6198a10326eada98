"""`pvflow demo`: a simulated beamline scanned through bluesky into Tiled (what `make demo`
runs)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo", help="scan a simulated beamline with bluesky, store in Tiled, summarise")
    demo.add_argument("--data", type=Path, default=Path("pvflow-data"),
                      help="folder for the Tiled store, backups and the plot "
                           "(default: ./pvflow-data)")
    demo.add_argument("--quick", action="store_true",
                      help="small scans (5 step points, 50 fly points), for tests")
    demo.add_argument("--step-points", type=int, default=11, help="points of the step scan")
    demo.add_argument("--fly-points", type=int, default=400,
                      help="points of the fly scan (at most 10000)")
    demo.add_argument("--existing-iocs", action="store_true",
                      help="start no IOCs: use running ones, found through EPICS_* variables")
    demo.add_argument("--detector-prefix", default="DEMO:DET:")
    demo.add_argument("--sync-prefix", default="DEMO:SYNC:")
    demo.add_argument("--flyscan-prefix", default="DEMO:FLY:")
    demo.add_argument("--tiled", metavar="URI",
                      help="store in this Tiled server instead of starting one")
    demo.add_argument("--api-key", help="API key of --tiled (default: $TILED_API_KEY)")
    demo.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..demo.beamline import Prefixes
    from ..demo.session import DemoOptions
    from ..demo.session import run as run_demo

    if not 1 <= args.fly_points <= 10_000 or args.step_points < 1:
        raise SystemExit("pvflow demo: --fly-points must be in 1..10000 and --step-points "
                         "at least 1")
    options = DemoOptions(
        data=args.data, step_points=5 if args.quick else args.step_points,
        fly_points=50 if args.quick else args.fly_points, existing_iocs=args.existing_iocs,
        prefixes=Prefixes(args.detector_prefix, args.sync_prefix, args.flyscan_prefix),
        tiled_uri=args.tiled, tiled_api_key=args.api_key)
    return run_demo(options)
