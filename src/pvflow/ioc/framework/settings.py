"""Configuration from environment variables, validated by pydantic (application layer).

IOCs are configured like services: by environment variables, so a systemd unit or a container
file holds the whole configuration. A bad value must stop the IOC at start with one line naming
the variable, the value and what is wrong, never a traceback and never a silently used default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

OFF_WORDS = frozenset({"", "0", "no", "nope", "false", "off"})
ON_WORDS = frozenset({"yes", "true", "on"})


class ConfigError(ValueError):
    """A configuration variable has a bad value; the message is one line naming it."""


def variable_name(settings_class: type[BaseSettings], field_name: str) -> str:
    """The environment variable that sets ``field_name``: its alias, else prefix + name."""
    field = settings_class.model_fields.get(field_name)
    alias = field.validation_alias if field and isinstance(field.validation_alias, str) else None
    prefix = str(settings_class.model_config.get("env_prefix") or "")
    return alias or (prefix + field_name).upper()


def load_settings(settings_class: type[SettingsT],
                  environ: Mapping[str, str] | None = None) -> SettingsT:
    """Build ``settings_class`` from ``environ`` (default ``os.environ``).

    The class's ``model_config`` gives the variable prefix. Errors become one
    :class:`ConfigError` naming every bad variable.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    for field_name in settings_class.model_fields:
        variable = variable_name(settings_class, field_name)
        if variable in environ:
            values[field_name] = environ[variable]
    try:
        # Values are passed explicitly so the process environment is read exactly once, here.
        return settings_class.model_validate(values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field_name = str(error["loc"][0]) if error["loc"] else "?"
            variable = variable_name(settings_class, field_name)
            message = str(error["msg"]).removeprefix("Value error, ")
            given = values.get(field_name)
            shown = f"={given!r}" if given is not None else " (unset)"
            problems.append(f"{variable}{shown}: {message}")
        raise ConfigError("bad configuration: " + "; ".join(problems)) from None


def parse_duration_switch(text: str | float | None) -> float | None:
    """A duration that may be switched off: unset, 0, no, false, off -> None; yes/on -> 1.0."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        word = text.strip().lower()
        if word in OFF_WORDS:
            return None
        if word in ON_WORDS:
            return 1.0
        try:
            value = float(word)
        except ValueError:
            raise ValueError(f"expected a duration in seconds or one of no/false/0/yes, "
                             f"got {text!r}") from None
    if value != value or value < 0:
        raise ValueError(f"a duration must be >= 0 seconds, got {text!r}")
    return value or None
