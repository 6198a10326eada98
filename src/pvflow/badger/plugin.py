"""Writes pvflow's Badger plugin folders (integration layer; plain files, no Badger import).

Badger has no entry points: it scans ``BADGER_PLUGIN_ROOT/{interfaces,environments}/<name>``
for an ``__init__.py`` defining ``Interface`` (or ``Environment``) and a ``configs.yaml``.
The folders written here hold one-line modules importing the classes from the installed
pvflow, so upgrading pvflow upgrades the plugins and nothing is copied out of date.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from .example import EXAMPLE_DB

INTERFACE = "pvflow"
ENVIRONMENT = "pvflow_example"

INTERFACE_MODULE = '''\
"""Badger interface "pvflow": EPICS Channel Access and pvAccess through pvflow.

Written by `pvflow badger install`; the code is pvflow.badger.interface in the installed pvflow.
"""

from pvflow.badger.interface import Interface

__all__ = ["Interface"]
'''

INTERFACE_README = """\
# pvflow interface

EPICS Channel Access and pvAccess for Badger through pvflow.
Channel names route by prefix: `NAME` or `ca://NAME` for Channel Access, `pva://NAME` for
pvAccess; one environment may mix both.

Parameters (`Interface(...)`; Badger builds it with the defaults):

- `timeout` (3 s): each get, put and connection.
- `read_only` (false): `set_values` logs what it would write and writes nothing.
- `parallel` (false): the puts and validations of one `set_values` call run concurrently;
  every failed channel is reported together.
- `put_attempts` (2), `retry_delay` (1 s): a put that times out is tried again.
- `validations`: set PV -> `functools.partial(pvflow.badger.wait_for_readback, readback_pv=...,
  tolerance=..., timeout=..., offset=...)`, used when the environment passes no `configs`.
- `epics_variables`: EPICS_* variables replacing the process environment.

`get_values` reads every channel in one bulk request; a channel that cannot be read gives
NaN and a warning.
"""

ENVIRONMENT_MODULE = '''\
"""Badger environment "pvflow_example": two quadrupoles and a beam size over CA and PVA.

Written by `pvflow badger install`; the code is pvflow.badger.example in the installed pvflow.
"""

from pvflow.badger.example import Environment

__all__ = ["Environment"]
'''

ENVIRONMENT_README = """\
# pvflow_example environment

Minimise `PVFLOW:EXAMPLE:BEAM:SIZE` over `PVFLOW:EXAMPLE:Q1:SET` (Channel Access) and
`pva://PVFLOW:EXAMPLE:Q2:SET` (pvAccess); each setpoint is validated against its readback.

Serve the PVs with the C softIoc from this folder:

    python -m pvxslibs.ioc -d example.db
"""


def _configs(name: str, extra: str = "") -> str:
    version = metadata.version("pvflow")
    return (f'name: {name}\nversion: "{version}"\n{extra}'
            "dependencies:\n  - pvflow\n  - badger-opt\n")


def plugin_files() -> dict[str, str]:
    """Relative path under the plugin root -> text, for every file pvflow installs."""
    interface = f"interfaces/{INTERFACE}"
    environment = f"environments/{ENVIRONMENT}"
    return {
        f"{interface}/__init__.py": INTERFACE_MODULE,
        f"{interface}/configs.yaml": _configs(INTERFACE),
        f"{interface}/README.md": INTERFACE_README,
        f"{environment}/__init__.py": ENVIRONMENT_MODULE,
        f"{environment}/configs.yaml": _configs(
            ENVIRONMENT, 'description: "pvflow example: two quadrupoles, CA and PVA"\n'
            f"interface:\n  - {INTERFACE}\n"),
        f"{environment}/README.md": ENVIRONMENT_README,
        f"{environment}/example.db": EXAMPLE_DB,
    }


def install_plugins(root: Path, *, force: bool = False) -> list[Path]:
    """Write the plugin folders under ``root`` (created if missing); returns the files.

    A file that exists with other content (edited by hand, perhaps) is kept unless ``force``:
    FileExistsError then lists every such file and nothing is written.
    """
    files = {root / relative: text for relative, text in plugin_files().items()}
    if not force:
        changed = [path for path, text in files.items()
                   if path.exists() and path.read_text() != text]
        if changed:
            raise FileExistsError("these files exist with other content (use --force to "
                                  f"replace them): {', '.join(map(str, changed))}")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)
