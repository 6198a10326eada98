"""`pvflow demo`: the tour of a simulated beamline (what `make demo` runs)."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser("demo", help="run the simulated-beamline demo")
    demo.add_argument("--points", type=int, default=11, help="points of the step scan")
    demo.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..demo.beamline import run as run_demo

    return run_demo(points=args.points)
