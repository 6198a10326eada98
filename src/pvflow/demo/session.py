"""`pvflow demo`: a simulated beamline, a step scan and a fly scan through the RunEngine, every
document in Tiled, read back, summarised and plotted.

What it starts (the IOCs and the Tiled server, unless told to use existing ones) it stops
again, also on Ctrl-C: everything sits on one ExitStack that unwinds whatever happens.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from rich.console import Console

from ..context import Context
from .beamline import Prefixes, SimulatedBeamline
from .interrupt import PauseAtOnce, WakeForSignals
from .io_clock import IoClock
from .tiled_server import TiledServer

EXIT_INTERRUPTED = 130


@dataclass
class DemoOptions:
    data: Path = Path("pvflow-data")
    step_points: int = 11
    fly_points: int = 400
    fly_period: float = 0.01
    existing_iocs: bool = False  # use IOCs already running (EPICS_* from the environment)
    prefixes: Prefixes = field(default_factory=Prefixes)
    tiled_uri: str | None = None  # a running Tiled server instead of the embedded one
    tiled_api_key: str | None = None


def run(options: DemoOptions) -> int:
    console = Console(highlight=False)
    try:
        with ExitStack() as stack:
            return _demo(options, console, stack)
    except KeyboardInterrupt:
        console.print("\n[bold]interrupted[/]: everything the demo started has been stopped")
        return EXIT_INTERRUPTED


def _start_servers(options: DemoOptions, console: Console, stack: ExitStack
                   ) -> tuple[dict[str, str] | None, tuple[str, str | None]]:
    """Start the IOCs and the Tiled server side by side; their EPICS env and Tiled address."""
    tiled: TiledServer | None = None
    if options.tiled_uri is None:
        tiled = TiledServer(options.data / "tiled", readable=[options.data / "images"])
        stack.callback(tiled.stop)
        tiled.start(wait=False)
    env = None
    if not options.existing_iocs:
        beamline = SimulatedBeamline(options.prefixes)
        console.print("starting the simulated beamline: detector, sync and fly-scan IOCs ...")
        stack.enter_context(beamline)
        env = dict(beamline.env)
        for name, pid in beamline.pids.items():
            console.print(f"  {name} IOC running, pid {pid}")
        console.print(f"  reach them with EPICS_CA_ADDR_LIST='{env['EPICS_CA_ADDR_LIST']}' "
                      "EPICS_CA_AUTO_ADDR_LIST=NO", soft_wrap=True)
    if tiled is None:
        return env, (options.tiled_uri or "", options.tiled_api_key)
    tiled.wait_ready()
    assert tiled.process is not None
    console.print(f"  Tiled server running, pid {tiled.process.pid}, {tiled.uri}, data in "
                  f"{tiled.folder}")
    return env, (tiled.uri, tiled.api_key)


def _demo(options: DemoOptions, console: Console, stack: ExitStack) -> int:
    import bluesky.plans as bp
    import bluesky.preprocessors as bpp
    from bluesky import RunEngine
    from bluesky.utils import RunEngineInterrupted

    from ..bluesky.busy_flyer import BusyFlyer
    from ..bluesky.controller import FlyController
    from ..bluesky.plans import fly_scan
    from ..bluesky.targets.tiled import TiledTarget, connect
    from ..bluesky.writer import BackgroundWriter
    from ophyd_async.core import init_devices

    from ..bluesky.diss_detector import DissDetector
    from .devices import PVGroup, PVSetting
    from .progress import FlyProgress, StepProgress, progress_bars
    from .summary import check_images, plot_fly_scan, print_summary, read_back

    options.data.mkdir(parents=True, exist_ok=True)
    env, (tiled_uri, api_key) = _start_servers(options, console, stack)
    context = stack.enter_context(Context(env, timeout=10.0))
    clock = IoClock(context)
    timed = cast(Context, clock)  # the devices' I/O goes through the clock
    prefixes = options.prefixes

    client = connect(tiled_uri, api_key)
    writer = BackgroundWriter(TiledTarget(client), backup_directory=options.data / "backup")
    stack.callback(writer.close)
    engine = RunEngine({"beamline": "pvflow demo"}, context_managers=[PauseAtOnce],
                       during_task=WakeForSignals())
    engine.subscribe(writer)

    channels = context.get(prefixes.detector + "channels", as_string=True).split(":")
    context.put(prefixes.detector + "duration", 0.02)
    with init_devices():  # its images go to HDF5 files under data/images, Tiled reads them
        detector = DissDetector(context, prefixes.detector, options.data / "images",
                                name="det")
    energy = PVSetting(timed, prefixes.detector + f"{channels[0]}:enerj", "energy")
    sync = PVGroup(timed, {"state": prefixes.sync + "state", "pid": prefixes.sync + "pid_state"},
                   "sync")
    flyer = BusyFlyer(timed, name="fly", controller=FlyController(prefix=prefixes.flyscan))
    context.put(prefixes.flyscan + "fly:noise", 0.02)
    stack.callback(flyer.stop)  # Ctrl-C mid-scan: the controller stops too

    io_seconds: dict[str, float] = {}
    uids: list[str] = []

    def measured(plan: Any) -> None:
        clock.lap()
        try:
            (uid,) = engine(plan)  # type: ignore[misc]  # a tuple of uids by default
        except RunEngineInterrupted:
            # the RunEngine logs an abort with the traceback of the pause: noise for a Ctrl-C
            engine.log.logger.disabled = True
            engine.abort("interrupted by the user")
            raise KeyboardInterrupt from None
        io_seconds[uid] = clock.lap()[0]
        uids.append(uid)

    console.print(f"\n[bold]step scan[/]: {detector.name} ({', '.join(channels)}) against "
                  f"{energy.pv}, {options.step_points} points, sync state as baseline")
    with progress_bars() as progress:
        token = engine.subscribe(StepProgress(progress))
        measured(bpp.baseline_wrapper(
            bp.scan([detector], energy, 3.0, 4.0, options.step_points), [sync]))
        engine.unsubscribe(token)

    console.print(f"\n[bold]fly scan[/]: {options.fly_points} points from 0 to 10 mm, one every "
                  f"{options.fly_period * 1e3:g} ms, arrays read in one bulk get")
    with progress_bars() as progress:
        follow = FlyProgress(progress, "fly_scan", options.fly_points)
        with context.subscribe(prefixes.flyscan + "t_array.NORD", follow, form="value"):
            measured(bpp.baseline_wrapper(
                fly_scan(flyer, points=options.fly_points, start=0.0, end=10.0,
                         period=options.fly_period), [sync]))

    started = time.perf_counter()
    report = writer.close()
    console.print(f"\nstore: {report.delivered} documents in Tiled, the last ones "
                  f"{time.perf_counter() - started:.2f} s after the RunEngine finished; "
                  f"{report.spilled_documents} in backup files")

    summaries = read_back(client, uids)
    print_summary(console, summaries, io_seconds)
    check_images(console, client, uids[0], detector.name, channels[0],
                 context.get(f"{prefixes.detector}{channels[0]}:image"))
    plot = plot_fly_scan(client, uids[-1], flyer.stream_name, "fly_x", "fly_y",
                         options.data / "flyscan.png")
    console.print(f"fly-scan plot: {plot.resolve()}")
    console.print(f"Tiled data: {(options.data / 'tiled').resolve()}" if options.tiled_uri is None
                  else f"Tiled server: {tiled_uri}")
    console.print("stopping what the demo started ...")
    return 0 if not report.spilled_runs else 1

