"""Configuration of the fly-scan controller IOC from ``FLYSCAN_*`` environment variables.

The default prefix is ``prj:``, the prefix of the fly-scan tutorial, so its ``MyFlyer`` runs
against a default IOC without a single change.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ..framework.settings import IocSettings

LONGEST_RECORD_SUFFIX = "fly:background"  # the longest record name after the prefix


class FlyScanSettings(IocSettings):
    """``FLYSCAN_PREFIX``, ``FLYSCAN_NELM``, ``FLYSCAN_LOG_LEVEL``, ``FLYSCAN_SEED``."""

    model_config = SettingsConfigDict(env_prefix="FLYSCAN_")
    longest_record_suffix = LONGEST_RECORD_SUFFIX

    prefix: str = Field("prj:", description="record name prefix $(P)")
    log_level: str = Field("info", description="debug, info, warning or error")
    nelm: int = Field(256, ge=1, le=1_000_000, description="NELM of t/x/y_array")
    seed: int | None = Field(None, description="seed of the signal noise (None: random)")
