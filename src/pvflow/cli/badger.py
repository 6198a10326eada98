"""``pvflow badger install [PLUGIN_ROOT]``: make Badger find pvflow (application layer).

Badger loads plugins only from folders under its plugin root (the ``BADGER_PLUGIN_ROOT``
setting), so installing pvflow is not enough: this writes ``interfaces/pvflow`` and the
example environment ``environments/pvflow_example`` there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def configured_root() -> str | None:
    """Badger's ``BADGER_PLUGIN_ROOT`` setting (None when unset)."""
    from badger.settings import init_settings

    root: str | None = init_settings().read_value("BADGER_PLUGIN_ROOT")
    return root


def run_install(args: argparse.Namespace) -> int:
    try:
        from pvflow.badger.plugin import install_plugins
    except ImportError as error:
        print(f"pvflow badger: Badger is not installed ({error}); "
              "install pvflow[badger] (torch first, see docs/badger.md)", file=sys.stderr)
        return 1
    configured = configured_root()
    root = args.plugin_root or configured
    if root is None:
        print("pvflow badger install: Badger has no plugin root yet; name one "
              "(`pvflow badger install PLUGIN_ROOT`) or set it with "
              "`badger config BADGER_PLUGIN_ROOT`", file=sys.stderr)
        return 2
    try:
        written = install_plugins(Path(root).expanduser(), force=args.force)
    except FileExistsError as error:
        print(f"pvflow badger install: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    target = Path(root).expanduser().resolve()
    if configured is None or Path(configured).expanduser().resolve() != target:
        where = f"is {configured}" if configured else "is not set"
        print(f"note: Badger's plugin root {where}; point it at {target} with "
              "`badger config BADGER_PLUGIN_ROOT`", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "badger", help="Badger optimiser plugins",
        description="Badger (badger-opt) integration: plugin folders for Badger's loader.")
    actions = parser.add_subparsers(dest="badger_action", metavar="ACTION", required=True)
    install = actions.add_parser(
        "install", help="write the pvflow interface and example environment plugins",
        description="Write interfaces/pvflow and environments/pvflow_example under "
                    "PLUGIN_ROOT (default: Badger's BADGER_PLUGIN_ROOT setting).")
    install.add_argument("plugin_root", nargs="?", metavar="PLUGIN_ROOT",
                         help="Badger plugin root (default: Badger's setting)")
    install.add_argument("--force", action="store_true",
                         help="replace plugin files that differ from pvflow's")
    install.set_defaults(run=run_install)
