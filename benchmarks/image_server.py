"""The benchmark's NTNDArray server: ``python -m benchmarks.image_server PORT``.

qsrv has no NTNDArray record without areaDetector, so a p4p (pvxs) server serves one image of
1024 x 1024 uint16 pixels, as an areaDetector IOC would, on 127.0.0.1:PORT (TCP and UDP
search) only. Its configuration is passed explicitly, never read from the environment. It
prints ``ready`` and serves until its stdin closes.
"""

from __future__ import annotations

import sys

import numpy as np
from p4p.nt import NTNDArray
from p4p.server import Server
from p4p.server.thread import SharedPV

IMAGE_NAME = "bench:image:1M"
IMAGE_SHAPE = (1024, 1024)  # rows, columns
READY_LINE = "ready"


def image() -> np.ndarray:
    """Distinct neighbouring pixels, so a shifted or truncated read shows in its last pixel."""
    return (np.arange(IMAGE_SHAPE[0] * IMAGE_SHAPE[1]) % 65521).astype(np.uint16).reshape(
        IMAGE_SHAPE)


def main() -> None:
    port = sys.argv[1]
    value = NTNDArray().wrap(image(), attrib={"AcquireTime": 0.01, "Camera": "bench"})
    conf = {"EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1", "EPICS_PVAS_SERVER_PORT": port,
            "EPICS_PVAS_BROADCAST_PORT": port, "EPICS_PVAS_BEACON_ADDR_LIST": "",
            "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO"}
    with Server(providers=[{IMAGE_NAME: SharedPV(initial=value)}], conf=conf, useenv=False):
        print(READY_LINE, flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
