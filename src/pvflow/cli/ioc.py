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
from typing import Any

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

#: app name -> "module:Class" of its settings (pydantic only: cheap to import for --help)
SETTINGS: dict[str, str] = {
    "detector": "pvflow.ioc.detector.config:DetectorSettings",
    "flyscan": "pvflow.ioc.flyscan.config:FlyScanSettings",
    "sync": "pvflow.ioc.sync.config:SyncSettings",
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


def variables(app: str) -> str:
    """The environment variables ``app`` reads, for its --help: the settings module's own
    table when it documents every one of them, else each with its description and default."""
    from ..ioc.framework.settings import variable_name

    module_name, _, class_name = SETTINGS[app].partition(":")
    module = importlib.import_module(module_name)
    settings = getattr(module, class_name)
    names = {field_name: variable_name(settings, field_name) for field_name in settings.model_fields}
    table = (module.__doc__ or "").partition("\n\n")[2].strip()  # after the summary line
    if all(name in table for name in names.values()):
        return f"environment variables:\n\n{table}\n\nMore in docs/ioc.md."
    lines = ["environment variables:"]
    for field_name, field in settings.model_fields.items():
        default = "computed" if field.default_factory is not None else \
            "unset" if field.default is None else str(field.default)
        about = f"{field.description}; " if field.description else ""
        lines.append(f"  {names[field_name]:26}{about}default: {default}")
    return "\n".join([*lines, "", "More in docs/ioc.md."])


class AppHelp(argparse.Action):
    """``pvflow ioc APP -h``: the app's variables, imported only when asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, help="show the app's variables and exit")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        parser.epilog = variables(parser.prog.split()[-1])
        parser.print_help()
        parser.exit()


def run(args: argparse.Namespace) -> int:
    return int(resolve(args.app)(None) or 0)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "ioc", help="run an IOC (configured by environment variables)",
        description="Run an IOC in this process until SIGTERM/SIGINT. "
                    "`pvflow ioc APP -h` lists the app's variables.")
    apps = parser.add_subparsers(dest="app", metavar="APP", required=True)
    for name in sorted(APPS):
        app = apps.add_parser(name, help=HELP.get(name, APPS[name]), add_help=False,
                              description=HELP.get(name, APPS[name]),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
        app.add_argument("-h", "--help", action=AppHelp)
    parser.set_defaults(run=run)
