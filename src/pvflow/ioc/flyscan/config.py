"""Configuration of the fly-scan controller IOC from ``FLYSCAN_*`` environment variables.

The default prefix is ``prj:``, the prefix of the fly-scan tutorial, so its ``MyFlyer`` runs
against a default IOC without a single change.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..framework.records import check_prefix
from ..framework.structured_logging import parse_level

LONGEST_RECORD_SUFFIX = "fly:background"  # the longest record name after the prefix


class FlyScanConfig(BaseSettings):
    """``FLYSCAN_PREFIX``, ``FLYSCAN_NELM``, ``FLYSCAN_LOG_LEVEL``, ``FLYSCAN_SEED``."""

    model_config = SettingsConfigDict(env_prefix="FLYSCAN_")

    prefix: str = Field("prj:", min_length=1, description="record name prefix $(P)")
    nelm: int = Field(256, ge=1, le=1_000_000, description="NELM of t/x/y_array")
    log_level: str = Field("info", description="debug, info, warning or error")
    seed: int | None = Field(None, description="seed of the signal noise (None: random)")

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        parse_level(value)
        return value

    @field_validator("prefix")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if any(character.isspace() for character in value):
            raise ValueError("must not contain white space")
        return check_prefix(value, LONGEST_RECORD_SUFFIX)
