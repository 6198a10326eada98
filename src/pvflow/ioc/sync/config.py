"""Configuration of the sync IOC: syncster's ``SYNCSTER_*`` variables (application layer).

==========================  ===================================================================
``SYNCSTER_PREFIX``          PV prefix including the trailing ``:`` (default ``SYNCSTER:``)
``SYNCSTER_LOG_LEVEL``       ``debug``, ``info`` (default), ``warning``/``warn``, ``error``
``SYNCSTER_RRE_PORT``        serial device of the RRE (``/dev/ttyUSB0``); empty, ``none`` or
                             ``None`` selects the simulated device, as in syncster
``SYNCSTER_AUTO_STRAY``      ``yes``: OFF moves on to STRAY by itself (default: no)
``SYNCSTER_SYNC_TIMEOUT``    seconds in STRAY before ERROR; negative waits forever (default 300)
==========================  ===================================================================

pvflow adds, both optional: ``SYNCSTER_BACKEND`` (``sim``, ``rre`` or ``module:Class``; default
``rre`` when a port is given, else ``sim``) and ``SYNCSTER_POLL_PERIOD`` (seconds between two
reads of the device, default 1.0 as in syncster).
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from ..framework.settings import OFF_WORDS, ON_WORDS, IocSettings

NO_PORT_WORDS = frozenset({"", "none"})
LONGEST_RECORD_SUFFIX = "sim:inject_error"  # the longest record name after the prefix (records.py)


class SyncSettings(IocSettings):
    """The ``SYNCSTER_*`` variables, validated."""

    model_config = SettingsConfigDict(env_prefix="SYNCSTER_")
    longest_record_suffix = LONGEST_RECORD_SUFFIX

    prefix: str = "SYNCSTER:"
    rre_port: str | None = None
    auto_stray: bool = False
    sync_timeout: float = 300.0
    backend: str | None = None
    poll_period: float = Field(default=1.0, gt=0, le=60)

    @field_validator("rre_port")
    @classmethod
    def _port(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in NO_PORT_WORDS:
            return None
        return value.strip()

    @field_validator("auto_stray", mode="before")
    @classmethod
    def _auto_stray(cls, value: object) -> bool:
        if isinstance(value, bool):
            return value
        word = str(value).strip().lower()
        if word in ON_WORDS:
            return True
        if word in OFF_WORDS:
            return False
        raise ValueError(f"expected yes or no, got {value!r}")

    @property
    def backend_spec(self) -> str:
        """The backend to load: explicit, else ``rre`` with a port, else ``sim``."""
        if self.backend and self.backend.strip():
            return self.backend.strip()
        return "rre" if self.rre_port else "sim"

    @property
    def timeout(self) -> float | None:
        """Seconds allowed in STRAY, None for forever."""
        return None if self.sync_timeout < 0 else self.sync_timeout
