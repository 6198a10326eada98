"""The detector IOC as a subprocess with its own prefix and ports, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

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


def continuous_series(data: Mapping[str, Any], num_images: int) -> list[int]:
    """The series ids of a saved file (``read_complete``), once checked that it holds whole
    series whose ids, and the sim's running image numbers (pixel (0, 0) of ch0), go up by
    one: nothing lost or repeated."""
    numids = [int(numid) for numid in data["numid"][::num_images]]
    assert len(data["numid"]) == len(numids) * num_images
    assert list(np.diff(numids)) == [1] * (len(numids) - 1)
    stamps = data["images/ch0"][:, 0, 0].astype(int)
    assert list(np.diff(stamps)) == [1] * (len(stamps) - 1)
    return numids


def checksum(images: np.ndarray) -> str:
    """The pixels' digest, compared between what the IOC published and what a file holds."""
    return hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint16).tobytes()).hexdigest()
