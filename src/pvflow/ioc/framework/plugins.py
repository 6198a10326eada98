"""Backend plugins: ``name`` (built in or from an entry-point group) or ``module:Class``.

IOC apps talk to hardware through a backend class. The app declares the protocol the class
must follow and a table of built-in names (``sim`` at least); third parties ship their class
in any importable module and select it with ``module:Class``, or register it under the app's
entry-point group so a plain name works. Every failure here is a one-line error naming the
spec, because it is read by an operator looking at a service that would not start.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Iterable, Mapping


class PluginError(ValueError):
    """A backend spec cannot be resolved to a usable class."""


def load_plugin(spec: str, *, builtins: Mapping[str, str], group: str | None = None,
                required: Iterable[str] = (), kind: str = "backend") -> type:
    """Resolve ``spec`` to a class and check it has the ``required`` attributes.

    Order: a built-in name, then an entry point of ``group`` with that name, then
    ``module:Class``.
    """
    spec = spec.strip()
    if not spec:
        raise PluginError(f"empty {kind} spec; use one of {sorted(builtins)} or module:Class")
    target = builtins.get(spec)
    if target is None and group is not None and ":" not in spec:
        for entry in importlib.metadata.entry_points(group=group):
            if entry.name == spec:
                target = entry.value
                break
    if target is None:
        if ":" not in spec:
            known = sorted(builtins)
            raise PluginError(f"unknown {kind} {spec!r}; use one of {known}, an entry point "
                              f"of group {group!r} or module:Class")
        target = spec
    module_name, _, attribute_path = target.partition(":")
    if not module_name or not attribute_path:
        raise PluginError(f"bad {kind} spec {spec!r}: expected module:Class")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PluginError(f"cannot import {kind} module {module_name!r} for {spec!r}: {exc}") from exc
    found: object = module
    for part in attribute_path.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise PluginError(f"{kind} {spec!r}: module {module_name!r} has no "
                              f"{attribute_path!r}") from None
    if not isinstance(found, type):
        raise PluginError(f"{kind} {spec!r} is not a class but {type(found).__name__}")
    missing = [name for name in required if not callable(getattr(found, name, None))]
    if missing:
        raise PluginError(f"{kind} {spec!r} ({found.__module__}.{found.__qualname__}) lacks "
                          f"{', '.join(missing)}")
    return found
