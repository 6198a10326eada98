"""`pvflow` entry point: one sub-command module per job, each with `register(subparsers)`.

Sub-command modules are imported only when chosen, so `pvflow get` never pays for the IOC
framework's imports (softioc loads EPICS base) and vice versa.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__

# sub-command -> module that registers it (module.register(subparsers) and module.run(args))
COMMANDS: dict[str, str] = {
    "get": "pvflow.cli.pv",
    "put": "pvflow.cli.pv",
    "monitor": "pvflow.cli.pv",
    "info": "pvflow.cli.pv",
    "demo": "pvflow.cli.demo",
    "ioc": "pvflow.cli.ioc",
    "view": "pvflow.cli.view",
    "save": "pvflow.cli.save",
    "replay": "pvflow.cli.replay",
    "badger": "pvflow.cli.badger",
    "sim": "pvflow.cli.sim",
}


class Parser(argparse.ArgumentParser):
    """Sub-commands marked ``intermixed`` take options anywhere among their names, as caget
    and pvget do (``pvflow get A -w 1 B -S``); plain argparse stops at the first option."""

    intermixed = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if not self.intermixed:
            return super().parse_known_args(args, namespace)
        self.intermixed = False  # parse_known_intermixed_args calls back in here
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self.intermixed = True


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = Parser(prog="pvflow", description="Fast EPICS tools for beamlines.")
    parser.add_argument("--version", action="version", version=f"pvflow {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    registered: set[str] = set()
    for name, module_name in COMMANDS.items():
        if module_name in registered:
            continue
        if chosen is not None and COMMANDS.get(chosen) != module_name:
            subparsers.add_parser(name, help=f"see `pvflow {name} --help`")
            continue
        importlib.import_module(module_name).register(subparsers)
        registered.add(module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in COMMANDS else None)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args.run(args) or 0)
