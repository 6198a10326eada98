"""The detector IOC as a subprocess with its own prefix and ports, for tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping

from tests.ioc.ioc_process import IocProcess, unique_prefix


class DetectorProcess(IocProcess):
    """``python -m pvflow ioc detector`` with the sim backend and a prefix of its own."""

    def __init__(self, env: Mapping[str, str] | None = None, *, startup_timeout: float = 90.0):
        self.prefix = unique_prefix()
        settings = {"DISS_EPICS_PREFIX": self.prefix, "DISS_DEVICE_BACKEND": "sim",
                    "DISSSIM_WARMUP": "0.1", **(env or {})}
        super().__init__(["-m", "pvflow", "ioc", "detector"], settings,
                         startup_timeout=startup_timeout, name="detector IOC")

    def pv(self, suffix: str) -> str:
        return self.prefix + suffix
