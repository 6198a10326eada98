"""Frames per second the detector IOC delivers to a monitoring client, with losses counted.

    python -m benchmarks.detector_fps [--seconds 5] [--exposures 0.005,max]

For each protocol (CA through pyepics/libca, PVA through p4p) and 1 and 4 channels, this
starts ``pvflow ioc detector`` with the ``sim`` backend (1024 x 1024 uint16, one image per
series, auto-acquire) and a client subprocess that monitors every ``{ch}:image`` and ``numid``.
The sim writes its running image number into pixel (0, 0), so the client counts frames that
arrived, frames lost (gaps) and frames repeated; ``numid`` gaps are counted too.

Runs per row: auto-acquire with a sim exposure of 5 ms per image (the IOC paces itself a
little above 100 series/s, the target) and ``max`` (1 µs exposures: as fast as the IOC can go;
a client that falls behind then loses frames, as any CA/PVA monitor does when the server
outruns it -- the loss column shows it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

WIDTH = HEIGHT = 1024
STAMP_MODULO = 65536
# DISS_AUTO_ACQUIRE=0 means "off" (Diss); a microsecond exposure means "as fast as possible".
MAX_RATE_DURATION = 1e-6


# -- client side (runs in its own process: libca reads its environment once) -----------------

class Counter:
    """Per-channel stamp bookkeeping: received, lost (gaps) and repeated frames."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.last: int | None = None
        self.received = 0
        self.lost = 0
        self.repeated = 0
        self.first_time: float | None = None
        self.last_time = 0.0

    def add(self, stamp: int) -> None:
        now = time.perf_counter()
        with self.lock:
            if self.last is not None:
                step = (stamp - self.last) % STAMP_MODULO
                if step == 0:
                    self.repeated += 1
                    return
                self.lost += step - 1
            if self.first_time is None:
                self.first_time = now
            self.last = stamp
            self.received += 1
            self.last_time = now


def run_client(protocol: str, prefix: str, channels: list[str], seconds: float) -> dict[str, Any]:
    counters = {channel: Counter() for channel in channels}
    numids = Counter()
    keep: list[Any] = []
    if protocol == "ca":
        import epics

        def image_callback(counter: Counter) -> Any:
            return lambda value=None, **_: counter.add(int(value[0]))

        for channel in channels:
            keep.append(epics.PV(f"{prefix}{channel}:image", auto_monitor=True,
                                 callback=image_callback(counters[channel]),
                                 connection_timeout=30))
        keep.append(epics.PV(f"{prefix}numid", auto_monitor=True,
                             callback=lambda value=None, **_: numids.add(int(value) % STAMP_MODULO)))
        for pv in keep:
            pv.wait_for_connection(30)
    else:
        from p4p.client.thread import Context

        context = Context("pva")
        keep.append(context)

        def image_callback(counter: Counter) -> Any:
            return lambda value: counter.add(int(value[0]))

        for channel in channels:
            keep.append(context.monitor(f"{prefix}{channel}:image",
                                        image_callback(counters[channel])))
        keep.append(context.monitor(f"{prefix}numid",
                                    lambda value: numids.add(int(value) % STAMP_MODULO)))
    # Measure from the first frame on, for `seconds`.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(c.received == 0 for c in counters.values()):
        time.sleep(0.01)
    snapshot = {name: (c.received, c.lost, c.repeated) for name, c in counters.items()}
    numid_start = (numids.received, numids.lost)
    start = time.perf_counter()
    time.sleep(seconds)
    elapsed = time.perf_counter() - start
    frames = {name: c.received - snapshot[name][0] for name, c in counters.items()}
    lost = {name: c.lost - snapshot[name][1] for name, c in counters.items()}
    repeated = {name: c.repeated - snapshot[name][2] for name, c in counters.items()}
    return {
        "fps": min(frames.values()) / elapsed,
        "channel_frames_per_s": sum(frames.values()) / elapsed,
        "lost": sum(lost.values()),
        "repeated": sum(repeated.values()),
        "numid_lost": numids.lost - numid_start[1],
        "numid_updates": numids.received - numid_start[0],
    }


# -- orchestration -----------------------------------------------------------------------------

def measure(protocol: str, channel_count: int, duration: float, seconds: float) -> dict[str, Any]:
    from tests.ioc.detector_process import DetectorProcess

    channels = [f"c{index}" for index in range(channel_count)]
    ioc = DetectorProcess({
        "DISSSIM_CHIP_SIZE": f"{WIDTH}:{HEIGHT}", "DISSSIM_DTYPE": "uint16",
        "DISSSIM_NUM_IMAGES": "1", "DISSSIM_CHANNELS": ":".join(channels),
        "DISSSIM_PATTERN": "noise", "DISS_AUTO_ACQUIRE": repr(duration),
        "DISS_LOG_LEVEL": "warning"})
    repeater = None
    try:
        ioc.start()
        env = {**os.environ, **ioc.epics_env}
        if protocol == "ca":
            repeater = subprocess.Popen(
                [sys.executable, "-m", "caproto.commandline.repeater", "-q"], env=env,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = subprocess.run(
            [sys.executable, "-m", "benchmarks.detector_fps", "--client", protocol,
             "--prefix", ioc.prefix, "--channels", ",".join(channels),
             "--seconds", str(seconds)],
            env=env, capture_output=True, text=True, timeout=seconds + 120)
        if client.returncode != 0:
            raise RuntimeError(f"client failed:\n{client.stderr[-3000:]}")
        return json.loads(client.stdout.strip().splitlines()[-1])
    finally:
        if repeater is not None:
            repeater.terminate()
            repeater.wait(10)
        ioc.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per row")
    parser.add_argument("--exposures", default="0.005,max",
                        help="sim exposure per image in seconds (paces the IOC), or max")
    parser.add_argument("--protocols", default="ca,pva")
    parser.add_argument("--channels", default="1,4", help="channel counts (orchestrator) or "
                        "channel names (client)")
    parser.add_argument("--client", choices=["ca", "pva"], help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        result = run_client(args.client, args.prefix, args.channels.split(","), args.seconds)
        print(json.dumps(result), flush=True)
        return 0
    print(f"detector IOC -> monitoring client, {WIDTH}x{HEIGHT} uint16 per channel, "
          f"{args.seconds:g} s per row")
    print(f"{'protocol':8} {'channels':>8} {'exposure':>10} {'series/s':>9} {'images/s':>9} "
          f"{'MB/s':>7} {'lost':>5} {'repeated':>8} {'numid lost':>10}")
    bytes_per_image = WIDTH * HEIGHT * 2
    for protocol in args.protocols.split(","):
        for count in (int(c) for c in args.channels.split(",")):
            for mode in args.exposures.split(","):
                duration = MAX_RATE_DURATION if mode == "max" else float(mode)
                mode = mode if mode == "max" else f"{float(mode) * 1000:g} ms"
                try:
                    r = measure(protocol, count, duration, args.seconds)
                except Exception as exc:  # noqa: BLE001 - report the row, go on
                    print(f"{protocol:8} {count:>8} {mode:>10} failed: {exc}")
                    continue
                print(f"{protocol:8} {count:>8} {mode:>10} {r['fps']:9.1f} "
                      f"{r['channel_frames_per_s']:9.1f} "
                      f"{r['channel_frames_per_s'] * bytes_per_image / 1e6:7.0f} "
                      f"{r['lost']:5d} {r['repeated']:8d} {r['numid_lost']:10d}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
