"""`DissDetector` in the RunEngine against the sim detector IOC: step and fly scans, images in
HDF5 only, registered in Tiled and read back as the IOC published them."""

from __future__ import annotations

import hashlib

import bluesky.plans as bp
import numpy as np
import pytest
from bluesky import RunEngine

from pvflow import Context
from pvflow.bluesky.plans import fly_detector
from pvflow.bluesky.targets.tiled import TiledTarget, connect
from pvflow.bluesky.writer import BackgroundWriter
from pvflow.demo.tiled_server import TiledServer
from pvflow.storage.series_file import read_complete
from tests.ioc.detector_process import DetectorProcess

pytest.importorskip("ophyd_async")
pytest.importorskip("tiled")

NUM_IMAGES, WIDTH, HEIGHT = 2, 24, 16


def checksum(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint16).tobytes()).hexdigest()


@pytest.fixture(scope="module")
def beamline(tmp_path_factory):
    folder = tmp_path_factory.mktemp("diss")
    with DetectorProcess({"DISSSIM_CHIP_SIZE": f"{WIDTH}:{HEIGHT}",
                          "DISSSIM_NUM_IMAGES": str(NUM_IMAGES), "DISSSIM_DTYPE": "uint16",
                          "DISS_LOG_LEVEL": "warning"}) as ioc, \
            TiledServer(folder / "tiled", readable=[folder / "data"]) as server, \
            Context(ioc.epics_env, timeout=10.0) as context:
        context.put(ioc.pv("duration"), 0.0)
        yield ioc, context, connect(server.uri, server.api_key), folder / "data"


@pytest.mark.parametrize("saving", ["ioc", "client"])
@pytest.mark.parametrize("pva", [False, True], ids=["ca", "pva"])
def test_step_and_fly_scans_store_every_image_and_tiled_reads_them_back(beamline, pva, saving):
    from ophyd_async.core import init_devices

    from pvflow.bluesky.diss_detector import DissDetector

    ioc, context, client, directory = beamline
    writer = BackgroundWriter(TiledTarget(client), backup_directory=directory / "backup")
    engine = RunEngine({})
    engine.subscribe(writer)
    documents: list[tuple[str, dict]] = []
    engine.subscribe(lambda name, doc: documents.append((name, doc)))
    # over CA the images get a circuit of their own, as at high rates they must
    images = None if pva else Context(ioc.epics_env, timeout=10.0)
    with init_devices():
        detector = DissDetector(context, ioc.prefix, directory, pva=pva, name="det",
                                dtype="uint16", image_context=images, saving=saving)
    (step,) = engine(bp.count([detector], 3))
    (fly,) = engine(fly_detector(detector, series=4, duration=0.001))
    last = {c: checksum(context.get(ioc.pv(f"{c}:image"))) for c in ("ch0", "ch1")}
    assert writer.close().spilled_runs == {}
    if images is not None:
        images.close()

    events = [doc for name, doc in documents if name == "event"]
    assert len(events) == 3 and all("det-ch0" not in e["data"] for e in events)
    assert sum(name == "stream_datum" for name, _ in documents) == 2 * (3 + 1)
    stamps = []
    for uid, series in ((step, 3), (fly, 4)):
        stream = client[uid]["primary"]
        for channel in ("ch0", "ch1"):
            images = stream[f"det-{channel}"].read()
            # bluesky >= 1.16's TiledWriter keeps a row per event: (series, images, W, H)
            assert images.shape in {(series * NUM_IMAGES, WIDTH, HEIGHT),
                                    (series, NUM_IMAGES, WIDTH, HEIGHT)}
            images = images.reshape(-1, WIDTH, HEIGHT)
            assert images.dtype == np.uint16
            if uid == fly:
                assert checksum(images[-NUM_IMAGES:]) == last[channel]
            if channel == "ch0":
                stamps.extend(images[:, 0, 0])
    assert list(np.diff(stamps)) == [1] * (len(stamps) - 1)  # none lost, none twice


def test_an_ioc_restart_while_it_writes_fails_the_scan_naming_it(tmp_path):
    import threading

    from ophyd_async.core import init_devices

    from pvflow.bluesky.diss_detector import DissDetector

    with DetectorProcess({"DISSSIM_CHIP_SIZE": f"{WIDTH}:{HEIGHT}", "DISSSIM_NUM_IMAGES": "1",
                          "DISSSIM_DTYPE": "uint16", "DISS_LOG_LEVEL": "warning"}) as ioc, \
            Context(ioc.epics_env, timeout=10.0) as context:
        engine = RunEngine({})
        with init_devices():
            detector = DissDetector(context, ioc.prefix, tmp_path, name="det", saving="ioc")
        captured = threading.Event()
        watch = context.subscribe(ioc.pv("file:captured"),
                                  lambda value: value >= 3 and captured.set(), form="value")
        restarted = threading.Thread(target=lambda: captured.wait(60) and (ioc.stop(),
                                                                          ioc.start()))
        restarted.start()
        with pytest.raises(Exception) as failure:
            engine(fly_detector(detector, series=100_000, duration=0.01))
        restarted.join(60)
        watch.close()
    assert captured.is_set()
    # the IOC stopping closes the file first: the client hears that, or the connection drop
    reason = f"{failure.value} {failure.value.__cause__!r}"
    assert ioc.prefix in reason and ("closed the file unasked" in reason or
                                     "lost the connection" in reason), reason
    (saved,) = tmp_path.glob("det-*.h5")
    numids = read_complete(saved)["numid"]  # the IOC's writer closed it: whole series
    assert len(numids) >= 3 and list(np.diff(numids)) == [1] * (len(numids) - 1)
