"""The Eiger backend's ``EIGER_*`` variables (Diss's names and defaults), validated.

============================== ==============================================================
``EIGER_DEVICE_HOST``           detector control unit host (default ``eiger.example.com``)
``EIGER_API_PORT``              SIMPLON HTTP port (default 80)
``EIGER_STREAM_PORT``           Stream V2 ZeroMQ port (default 31001)
``EIGER_API_VERSION``           SIMPLON API version in the URLs (default ``1.8.0``)
``EIGER_DEVICE_MODE``           ``snapshot`` (internal trigger, one image), ``single`` or
                                ``double`` (external gate, one or two images per trigger)
``EIGER_GATING_FREQUENCY``      gate pulses per second in the external modes (default 104500):
                                a duration of ``t`` s becomes ``t * f / images`` exposures
``EIGER_X2_THRESHOLD1_ENERGY``  threshold 1 energy in eV; unset leaves the detector's
``EIGER_X2_THRESHOLD2_ENERGY``  threshold 2 energy in eV; setting it enables threshold 2
``EIGER_IMAGE_OVERDUE``         seconds to wait for images past the exposure before ERROR
                                (default 5 in snapshot, 300 otherwise; 0 waits forever)
``EIGER_HTTP_TIMEOUT``          seconds a SIMPLON request may take (default 10)
============================== ==============================================================
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MODES = ("snapshot", "single", "double")


class EigerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EIGER_", extra="ignore")

    device_host: str = "eiger.example.com"
    api_port: int = Field(default=80, ge=1, le=65535)
    stream_port: int = Field(default=31001, ge=1, le=65535)
    api_version: str = "1.8.0"
    device_mode: Literal["snapshot", "single", "double"] = "snapshot"
    gating_frequency: float = Field(default=104500.0, gt=0)
    x2_threshold1_energy: float | None = Field(default=None, gt=0)
    x2_threshold2_energy: float | None = Field(default=None, gt=0)
    image_overdue: float | None = Field(default=None, ge=0)
    http_timeout: float = Field(default=10.0, gt=0)

    @field_validator("device_mode", mode="before")
    @classmethod
    def _mode(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("x2_threshold1_energy", "x2_threshold2_energy", "image_overdue",
                     mode="before")
    @classmethod
    def _optional(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def images_per_trigger(self) -> int:
        return 2 if self.device_mode == "double" else 1

    @property
    def overdue(self) -> float:
        """Seconds past the exposure before images are overdue (``inf``: never)."""
        if self.image_overdue is None:
            return 5.0 if self.device_mode == "snapshot" else 300.0
        return self.image_overdue or math.inf

    def exposures(self, duration: float) -> int:
        """Gate pulses per image for ``duration`` seconds in the external-gate modes."""
        return max(1, round(duration * self.gating_frequency / self.images_per_trigger))
