"""``pvflow sim eiger``: run a protocol-level detector simulator for dry runs (application layer).

Point the detector IOC at it with ``DISS_DEVICE_BACKEND=eiger EIGER_DEVICE_HOST=127.0.0.1
EIGER_API_PORT=<api> EIGER_STREAM_PORT=<stream>``. It prints one JSON line with its addresses,
then serves until SIGINT/SIGTERM. Faults can be set at start (``--fault drop_image=1``) or
later with ``PUT /sim/faults`` and ``POST /sim/reboot`` on the API port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from typing import Any


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        size = int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if min(size) < 1:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return size


def _fault(text: str) -> tuple[str, Any]:
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value) if value else True
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected NAME=JSON_VALUE, got {text!r}") from None


async def _run_eiger(args: argparse.Namespace) -> int:
    from ..ioc.detector.backends.eiger.sim import SimEiger, serve
    from ..ioc.framework.stop_signals import stop_on_signals

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    simulator = SimEiger(args.host, args.api_port, args.stream_port, args.size,
                               args.api_version, args.gate_frequency)
    simulator.inject(**dict(args.fault))
    stop = asyncio.Event()
    stop_on_signals(asyncio.get_running_loop(), stop)
    await serve(simulator, stop)
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run_eiger(args))
    except ValueError as exc:
        print(f"pvflow sim eiger: {exc}")
        return 2


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "sim", help="run a device simulator (eiger) for dry runs",
        description="Serve a simulated Dectris Eiger2 (SIMPLON HTTP API + Stream V2 over "
                    "ZeroMQ) on this host until SIGINT/SIGTERM.")
    parser.add_argument("device", choices=["eiger"], help="which device to simulate")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--api-port", type=int, default=8080, help="HTTP port (0: any free)")
    parser.add_argument("--stream-port", type=int, default=31001,
                        help="ZeroMQ stream port (0: any free)")
    parser.add_argument("--size", type=_size, default=(1028, 512), help="WIDTHxHEIGHT pixels")
    parser.add_argument("--api-version", default="1.8.0", help="SIMPLON API version served")
    parser.add_argument("--gate-frequency", type=float, default=104500.0,
                        help="external gate pulses per second in trigger_mode extg")
    parser.add_argument("--fault", type=_fault, action="append", default=[],
                        metavar="NAME=VALUE", help="inject a fault at start, e.g. drop_image=0")
    parser.set_defaults(run=run)
