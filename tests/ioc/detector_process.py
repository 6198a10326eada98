"""The detector IOC as a subprocess with its own prefix and ports, for tests and benchmarks."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from tests.ioc.clients import CaClient
from tests.ioc.ioc_process import IocProcess, unique_prefix


class DetectorProcess(IocProcess):
    """``python -m pvflow ioc detector`` with the sim backend and a prefix of its own."""

    def __init__(self, env: Mapping[str, str] | None = None, *, startup_timeout: float = 90.0,
                 launcher: Sequence[str] = ()):
        self.prefix = unique_prefix()
        settings = {"DISS_EPICS_PREFIX": self.prefix, "DISS_DEVICE_BACKEND": "sim",
                    "DISSSIM_WARMUP": "0.1", **(env or {})}
        super().__init__(["-m", "pvflow", "ioc", "detector"], settings,
                         startup_timeout=startup_timeout, name="detector IOC",
                         launcher=launcher)

    def pv(self, suffix: str) -> str:
        return self.prefix + suffix


def acquire_series(ca: CaClient, ioc: DetectorProcess) -> int:
    """Write acquire=1 and wait until the new series is published and READY is back."""
    before = ca.get(ioc.pv("numid"))
    ca.put(ioc.pv("acquire"), 1)
    ca.wait_for(ioc.pv("numid"), lambda numid: numid != before, what="a new numid")
    ca.wait_for(ioc.pv("state"), lambda state: state == "READY", what="READY")
    return int(ca.get(ioc.pv("numid")))


@contextlib.contextmanager
def instant_client(ioc: DetectorProcess) -> Iterator[CaClient]:
    """A caproto client of ``ioc`` with the exposure set to 0 s: a series comes at once."""
    client = CaClient(ioc.epics_env)
    try:
        client.put(ioc.pv("duration"), 0.0)
        yield client
    finally:
        client.close()
