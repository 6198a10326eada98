"""Configuration of the detector IOC: Diss's ``DISS_*`` variables (application layer).

Same names and meanings as Diss, so an existing unit file or container definition works:

==================== =========================================================================
``DISS_EPICS_PREFIX``  PV prefix including the trailing ``:``; default: 6 random capitals + ``:``
``DISS_DEVICE_BACKEND`` ``sim`` (default), ``eiger`` (alias ``eiger500k``), an entry point name of
                       ``pvflow.ioc.detector.backends``,
                       or ``module:Class``
``DISS_AUTO_ACQUIRE``  acquire again on every READY with this duration (s); off when unset,
                       ``0``, ``no``, ``false``; ``yes`` means 1 s
``DISS_LOOP_PERIOD``   seconds between idle polls of the device (default 0.1)
``DISS_LOG_LEVEL``     ``debug``, ``info`` (default), ``warning``, ``error``
==================== =========================================================================

pvflow adds two, both optional:

``DISS_ACQUIRE_OVERDUE``  seconds an acquisition may run beyond ``duration x num_images``
                          before it is an ERROR (default 30; 0 disables the check)
``DISS_STARTUP_TIMEOUT``  seconds to reach READY before the IOC gives up with FAIL (default 300)
"""

from __future__ import annotations

import random
import string
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from ..framework.settings import IocSettings, parse_duration_switch


# the longest record name after the prefix that does not depend on the device (pvs.py and the
# status records); a channel's own names are checked once the device has named its channels
LONGEST_RECORD_SUFFIX = "file:compression"


def random_prefix() -> str:
    """Diss's default: six random capitals and a colon (so two test IOCs never collide)."""
    return "".join(random.choices(string.ascii_uppercase, k=6)) + ":"


class DetectorSettings(IocSettings):
    """The ``DISS_*`` variables, validated."""

    model_config = SettingsConfigDict(env_prefix="DISS_")
    longest_record_suffix = LONGEST_RECORD_SUFFIX

    prefix: str = Field(default_factory=random_prefix, validation_alias="DISS_EPICS_PREFIX")
    device_backend: str = "sim"
    auto_acquire: float | None = None
    loop_period: float = Field(default=0.1, gt=0, le=60)
    acquire_overdue: float = Field(default=30.0, ge=0)
    startup_timeout: float = Field(default=300.0, gt=0)
    # file:path must lie under it (any CA or PVA client may write file:path); None: anywhere
    # the IOC's user may write
    file_directory: Path | None = None

    @field_validator("file_directory")
    @classmethod
    def _file_directory(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"no directory {value}")
        return None if value is None else value.resolve()

    @field_validator("device_backend")
    @classmethod
    def _backend(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("name a backend: sim, eiger, an entry point name or module:Class")
        return value.strip()

    @field_validator("auto_acquire", mode="before")
    @classmethod
    def _auto(cls, value: object) -> float | None:
        if value is None or isinstance(value, (str, int, float)):
            return parse_duration_switch(value)
        raise ValueError(f"expected a duration, got {value!r}")
