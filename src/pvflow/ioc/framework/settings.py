"""Configuration from environment variables, validated by pydantic (application layer).

IOCs are configured like services: by environment variables, so a systemd unit or a container
file holds the whole configuration. A bad value must stop the IOC at start with one line naming
the variable, the value and what is wrong, never a traceback and never a silently used default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import ClassVar, TypeVar

from pydantic import ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .structured_logging import configure_logging, parse_level

SettingsT = TypeVar("SettingsT", bound=BaseSettings)
IocSettingsT = TypeVar("IocSettingsT", bound="IocSettings")

OFF_WORDS = frozenset({"", "0", "no", "nope", "false", "off"})
ON_WORDS = frozenset({"yes", "true", "on"})
# EPICS record names are at most 60 characters (PVNAME_STRINGSZ 61 with the terminator).
MAX_RECORD_NAME = 60
# characters a prefix must not hold: they break record names, macros or links
PREFIX_FORBIDDEN = "\"'$.{}\\"


class ConfigError(ValueError):
    """A configuration variable has a bad value; the message is one line naming it."""


def check_prefix(prefix: str, longest_suffix: str) -> str:
    """``prefix`` if it leaves room for the app's longest record name, else ValueError
    (raised while the configuration is read, before any hardware is touched)."""
    length = len(prefix) + len(longest_suffix)
    if length > MAX_RECORD_NAME:
        raise ValueError(f"the prefix has {len(prefix)} characters: with {longest_suffix!r} "
                         f"it makes a {length}-character record name; EPICS allows "
                         f"{MAX_RECORD_NAME}, so the prefix may have at most "
                         f"{MAX_RECORD_NAME - len(longest_suffix)}")
    return prefix


class IocSettings(BaseSettings):
    """What the settings of every IOC hold: the record prefix and the log level.

    An app subclasses it with its ``env_prefix``, its own default prefix (and the variable's
    name, as ``validation_alias``, where it differs from ``<env_prefix>PREFIX``) and its
    :attr:`longest_record_suffix`, so a prefix too long for EPICS fails at start.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    #: the longest record name after the prefix that does not depend on the device
    longest_record_suffix: ClassVar[str] = ""

    prefix: str
    log_level: str = "info"

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the prefix must not be empty")
        if any(c.isspace() or c in PREFIX_FORBIDDEN for c in value):
            raise ValueError("the prefix must not contain spaces, quotes, '$', '.', braces "
                             "or backslashes")
        return check_prefix(value, cls.longest_record_suffix)

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        parse_level(value)
        return value.strip().lower()


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


def load_ioc_settings(settings_class: type[IocSettingsT],
                      environ: Mapping[str, str] | None = None) -> IocSettingsT:
    """An IOC's settings from ``environ``, with logging configured at their level: the first
    thing every app does."""
    settings = load_settings(settings_class, environ)
    configure_logging(settings.log_level)
    return settings


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
