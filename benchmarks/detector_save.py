"""Detector images into HDF5 at full rate: `pvflow save` against the smallest user loop, and
the RunEngine with and without image saving.

    python -m benchmarks.detector_save [--seconds 10] [--protocols pva,ca] [--counts 50]

``pvflow ioc detector`` with the ``sim`` backend publishes 1024 x 1024 ``uint16`` images, one
per series, acquiring again at once (``DISS_AUTO_ACQUIRE``, 5 ms exposures). Each writer
runs in its own process for ``--seconds``, then gets SIGINT. From the file alone: images/s,
MB/s, series lost (gaps in ``numid`` between the first and last saved) and images lost or
repeated (the sim's running image number in pixel (0, 0)); CPU seconds per saved second from
the writer's rusage. The peer is the h5py loop a user would write first: a monitor callback
(p4p over PVA, pyepics over CA) appending each image to a chunked dataset. CAspy, the tool
the Diss documentation names, is not on PyPI.

The RunEngine rows time ``DissDetector`` saving every image to HDF5, its documents going to
an embedded Tiled server through the background writer, against the same detector acquiring
without saving: the file written by the IOC (its ``file:`` PVs) and by the RunEngine's
process from monitors (as a Diss IOC needs). ``bp.count([detector], N)`` at 5 and 50 ms
exposures: a point waits for its series (with the client writing, for its 2 MB image over
pvAccess), a few ms whatever the exposure. The fly scan
(``fly_detector``, 5 ms exposures, one image a series) is the 100 images/s case: without
saving, the same acquisitions run inside a run with no writer (a ``StandardDetector`` cannot
fly without one).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

WIDTH = HEIGHT = 1024
EXPOSURE = 0.005
BYTES_PER_IMAGE = WIDTH * HEIGHT * 2
# who writes the file: the IOC (pvflow's detector IOC), or the RunEngine's process (Diss)
SAVING = ("ioc", "client")


# -- the smallest loop a user would write (runs in its own process) ---------------------------

def naive_writer(protocol: str, prefix: str, path: str) -> None:
    import h5py

    file = h5py.File(path, "w")
    images = file.create_dataset("image", (0, WIDTH, HEIGHT), maxshape=(None, WIDTH, HEIGHT),
                                 chunks=(1, WIDTH, HEIGHT), dtype="uint16")

    def append(value: Any) -> None:
        n = images.shape[0]
        images.resize(n + 1, axis=0)
        images[n] = np.asarray(value).reshape(WIDTH, HEIGHT)

    if protocol == "pva":
        from p4p.client.thread import Context

        context = Context("pva")
        context.monitor(f"{prefix}ch0:image", append)
    else:
        import epics

        keep = epics.PV(f"{prefix}ch0:image", auto_monitor=True,
                        callback=lambda value=None, **_: append(value))
        keep.wait_for_connection(30)
    print("saving", flush=True)
    try:
        signal.sigwait({signal.SIGINT})
    finally:
        file.close()


# -- measuring ---------------------------------------------------------------------------------

def run_writer(command: list[str], env: dict[str, str], seconds: float) -> float:
    """Run ``command`` until it says it is saving, for ``seconds`` more; its CPU seconds.
    A writer that stops by itself (a missing series) has its last words printed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if "saving" in line:
            break
    else:
        raise RuntimeError(f"{command[2:5]} did not start")
    try:
        output = process.communicate(timeout=seconds)[0]  # ends early only on failure
        print(f"  {command[2:4]} stopped by itself: {output.strip().splitlines()[-2:]}")
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def file_result(path: Path, dataset: str, cpu: float, seconds: float) -> dict[str, Any]:
    import h5py
    import hdf5plugin  # noqa: F401

    with h5py.File(path, "r") as f:
        images = f[dataset]
        count = images.shape[0]
        stamps = np.array([int(images[i, 0, 0]) for i in range(count)])
        numid = f["numid"][:] if "numid" in f else None
    steps = np.diff(stamps) % 65536
    published = int(np.sum(steps)) + 1 if count else 0  # the IOC's images, first to last saved
    result = {"images": count, "images_per_s": count / seconds,
              "published_per_s": published / seconds,
              "mb_per_s": count * BYTES_PER_IMAGE / seconds / 1e6,
              "lost_images": int(np.sum(np.maximum(steps - 1, 0))),
              "repeated_images": int(np.sum(steps == 0)), "cpu_per_s": cpu / seconds,
              "series_lost": None}
    if numid is not None and len(numid):
        result["series_lost"] = int(numid[-1] - numid[0] + 1 - len(np.unique(numid)))
    return result


def measure_writers(protocols: list[str], seconds: float) -> list[tuple[str, dict[str, Any]]]:
    from tests.ioc.detector_process import DetectorProcess

    rows = []
    ioc = DetectorProcess({"DISSSIM_CHIP_SIZE": f"{WIDTH}:{HEIGHT}", "DISSSIM_DTYPE": "uint16",
                           "DISSSIM_NUM_IMAGES": "1", "DISSSIM_CHANNELS": "ch0",
                           "DISS_AUTO_ACQUIRE": repr(EXPOSURE), "DISS_LOG_LEVEL": "warning"})
    scratch = tempfile.TemporaryDirectory(prefix="pvflow-save-bench-")
    folder = Path(scratch.name)
    repeater = None
    try:
        ioc.start()
        env = {**os.environ, **ioc.epics_env}
        repeater = subprocess.Popen([sys.executable, "-m", "caproto.commandline.repeater",
                                     "-q"], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        for protocol in protocols:
            flags = ["--pva"] if protocol == "pva" else []  # CA: uint16 from the FTVL
            path = folder / f"pvflow-{protocol}.h5"
            cpu = run_writer([sys.executable, "-m", "pvflow", "save", ioc.prefix, "--to",
                              str(path), *flags], env, seconds)
            rows.append((f"pvflow save {protocol}", file_result(path, "images/ch0", cpu,
                                                                 seconds)))
            path = folder / f"naive-{protocol}.h5"
            cpu = run_writer([sys.executable, "-m", "benchmarks.detector_save", "--naive",
                              protocol, "--prefix", ioc.prefix, "--path", str(path)], env,
                             seconds)
            peer = "p4p" if protocol == "pva" else "pyepics"
            rows.append((f"{peer} + h5py loop {protocol}", file_result(path, "image", cpu,
                                                                      seconds)))
            for file in folder.glob("*.h5"):
                file.unlink()
    finally:
        if repeater is not None:
            repeater.terminate()
            repeater.wait(10)
        ioc.stop()
        scratch.cleanup()
    return rows


@contextlib.contextmanager
def run_engine_setup() -> Iterator[tuple[Any, Any, dict[str, Any], Any]]:
    """A RunEngine writing to an embedded Tiled server, the detector IOC, and three
    ``DissDetector`` s on it over pvAccess: the IOC saving to HDF5, this process saving
    (as with a Diss IOC), and one acquiring only."""
    from bluesky import RunEngine
    from ophyd_async.core import init_devices

    from pvflow import Context
    from pvflow.bluesky.diss_detector import DissDetector
    from pvflow.bluesky.targets.tiled import TiledTarget, connect
    from pvflow.bluesky.writer import BackgroundWriter
    from pvflow.demo.tiled_server import TiledServer
    from tests.ioc.detector_process import DetectorProcess

    with tempfile.TemporaryDirectory(prefix="pvflow-re-bench-") as scratch, \
            DetectorProcess({"DISSSIM_CHIP_SIZE": f"{WIDTH}:{HEIGHT}", "DISSSIM_DTYPE": "uint16",
                             "DISSSIM_NUM_IMAGES": "1", "DISSSIM_CHANNELS": "ch0",
                             "DISS_LOG_LEVEL": "warning"}) as ioc, \
            TiledServer(Path(scratch) / "tiled", readable=[Path(scratch) / "images"]) as server, \
            Context(ioc.epics_env, timeout=10.0) as context:
        writer = BackgroundWriter(TiledTarget(connect(server.uri, server.api_key)),
                                  backup_directory=Path(scratch) / "backup")
        engine = RunEngine({})
        engine.subscribe(writer)
        with init_devices():  # connects the devices it finds as local names
            det_ioc = DissDetector(context, ioc.prefix, Path(scratch) / "images", pva=True,
                                   saving="ioc")
            det_client = DissDetector(context, ioc.prefix, Path(scratch) / "images",
                                      pva=True, saving="client")
            plain = DissDetector(context, ioc.prefix, None, pva=True)
        saving = {"ioc": det_ioc, "client": det_client}
        try:
            yield engine, context, saving, plain
        finally:
            writer.close()


def acquire_only(context: Any, detector: Any, series: int, duration: float) -> Any:
    """The fly scan's acquisitions without a writer: a ``StandardDetector`` cannot fly without
    its data logic, so the same trigger and acquire logic run alone inside a run."""
    import bluesky.plan_stubs as bps
    import bluesky.preprocessors as bpp

    from pvflow.bluesky.diss_detector import DissAcquireLogic, DissTriggerLogic

    trigger = DissTriggerLogic(context, detector.layout)
    acquire = DissAcquireLogic(context, detector.layout, trigger)

    async def acquisitions() -> None:
        await trigger.prepare_internal(series, duration, 0.0)
        await acquire.start_acquiring()
        await acquire.wait_for_idle()

    return bpp.run_wrapper(bps.wait_for([acquisitions]))


def measure_run_engine(counts: int, exposures: list[float], fly_series: int,
                       repeats: int = 3) -> dict[str, dict[str, float]]:
    """Seconds per row, without saving and with each writer of :data:`SAVING` (best of
    ``repeats`` runs each, alternating: the machine's load drifts): ``bp.count([det],
    counts)`` per exposure (a point waits for its image), and a fly scan of ``fly_series``
    series at 5 ms exposures."""
    import bluesky.plans as bp

    from pvflow.bluesky.plans import fly_detector

    times: dict[str, dict[str, float]] = {}
    with run_engine_setup() as (engine, context, saving, plain):
        plans = {f"bp.count of {counts} images, {exposure * 1e3:g} ms exposures":
                 (exposure, counts, lambda: bp.count([plain], counts),
                  {where: lambda d=d: bp.count([d], counts) for where, d in saving.items()})
                 for exposure in exposures}
        plans[f"fly scan of {fly_series} images, {EXPOSURE * 1e3:g} ms exposures"] = (
            EXPOSURE, fly_series, lambda: acquire_only(context, plain, fly_series, EXPOSURE),
            {where: lambda d=d: fly_detector(d, series=fly_series, duration=EXPOSURE)
             for where, d in saving.items()})
        for label, (exposure, images, without, with_saving) in plans.items():
            context.put(plain.layout().pv("duration"), exposure)
            best = times.setdefault(label, {"images": images})
            runs = [("without saving", without), *with_saving.items()]
            for key, plan in repeats * runs:
                started = time.perf_counter()
                engine(plan())
                best[key] = min(best.get(key, np.inf), time.perf_counter() - started)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="saving time per row")
    parser.add_argument("--protocols", default="pva,ca")
    parser.add_argument("--counts", type=int, default=40, help="points of the RunEngine rows")
    parser.add_argument("--re-exposures", default="0.005,0.05",
                        help="exposures (s) of the RunEngine rows")
    parser.add_argument("--fly-series", type=int, default=200,
                        help="series (one image each) of the RunEngine fly-scan row")
    parser.add_argument("--re-repeats", type=int, default=3,
                        help="runs per RunEngine row (the best counts)")
    parser.add_argument("--naive", choices=["ca", "pva"], help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.naive:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        naive_writer(args.naive, args.prefix, args.path)
        return 0
    print(f"detector IOC -> HDF5, {WIDTH}x{HEIGHT} uint16, one image per series, "
          f"{EXPOSURE * 1e3:g} ms exposures, {args.seconds:g} s per row")
    print(f"{'writer':24} {'IOC img/s':>9} {'saved/s':>8} {'MB/s':>6} {'CPU s/s':>8} "
          f"{'series lost':>11} "
          f"{'images lost':>11} {'repeated':>8}")
    for label, r in measure_writers(args.protocols.split(","), args.seconds):
        series_lost = "-" if r["series_lost"] is None else str(r["series_lost"])
        print(f"{label:24} {r['published_per_s']:9.1f} {r['images_per_s']:8.1f} "
              f"{r['mb_per_s']:6.0f} "
              f"{r['cpu_per_s']:8.2f} {series_lost:>11} {r['lost_images']:11d} "
              f"{r['repeated_images']:8d}", flush=True)
    exposures = [float(e) for e in args.re_exposures.split(",")]
    for label, times in measure_run_engine(args.counts, exposures, args.fly_series,
                                           args.re_repeats).items():
        base = times["without saving"]
        print(f"RunEngine {label} (PVA): {base:.2f} s without saving "
              f"({times['images'] / base:.0f} images/s)", flush=True)
        for where in SAVING:
            print(f"  with HDF5 + Tiled, written by the {where:6}: {times[where]:.2f} s "
                  f"({times['images'] / times[where]:.0f}/s): {times[where] / base:.2f}x",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
