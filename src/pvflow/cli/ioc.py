"""``pvflow ioc <app>``: run one of pvflow's IOCs in this process (application layer).

IOCs are configured by environment variables only (like services), so the command takes just
the app name. Apps are listed in :data:`APPS` as ``"module:function"``; the function takes the
environment (None for ``os.environ``) and returns the exit code. Nothing is imported until an
app is chosen.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping

#: app name -> "module:function" returning the exit code
APPS: dict[str, str] = {
    "detector": "pvflow.ioc.detector.app:main",
    "flyscan": "pvflow.ioc.flyscan.app:main",
    "sync": "pvflow.ioc.sync.app:main",
}

HELP = {
    "detector": "Diss-compatible detector IOC (DISS_* variables)",
    "flyscan": "busy-record fly-scan controller IOC (FLYSCAN_* variables)",
    "sync": "syncster-compatible laser-sync IOC (SYNCSTER_* variables)",
}


def resolve(app: str) -> Callable[[Mapping[str, str] | None], int]:
    """The entry function of ``app``; ValueError naming the known apps otherwise."""
    try:
        target = APPS[app]
    except KeyError:
        raise ValueError(f"unknown IOC app {app!r}; known: {', '.join(sorted(APPS))}") from None
    module_name, _, function_name = target.partition(":")
    function: Callable[[Mapping[str, str] | None], int] = getattr(
        importlib.import_module(module_name), function_name)
    return function


def run(args: argparse.Namespace) -> int:
    return int(resolve(args.app)(None) or 0)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    listing = "; ".join(f"{name}: {HELP.get(name, APPS[name])}" for name in sorted(APPS))
    parser = subparsers.add_parser(
        "ioc", help="run an IOC (configured by environment variables)",
        description=f"Run an IOC in this process until SIGTERM/SIGINT. Apps: {listing}.")
    parser.add_argument("app", choices=sorted(APPS), help="which IOC to run")
    parser.set_defaults(run=run)
