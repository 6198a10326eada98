"""The detector IOC's own HDF5 writer (``file:`` PVs), driven over CA by caproto: the file
holds exactly the series published while capturing; a refused capture says why; a killed or
stopped IOC leaves every written series whole."""

from __future__ import annotations

import os
import re
import select
import signal

import h5py
import numpy as np
import pytest

from pvflow.storage.series_file import read_complete

from ..small_disk import SmallDisk
from .detector_process import (DetectorProcess, acquire_series, checksum,
                               continuous_series, instant_client)

NUM_IMAGES, WIDTH, HEIGHT = 2, 24, 16
SIM = {"DISSSIM_CHIP_SIZE": f"{WIDTH}:{HEIGHT}", "DISSSIM_NUM_IMAGES": str(NUM_IMAGES),
       "DISSSIM_CHANNELS": "ch0:ch1", "DISSSIM_DTYPE": "uint16", "DISS_LOG_LEVEL": "warning"}


def text(value: str) -> list[int]:
    return [*value.encode(), 0]


def start_capture(ca, ioc, path) -> None:
    ca.put(ioc.pv("file:path"), text(str(path)))
    ca.put(ioc.pv("file:capture"), 1)
    ca.wait_for(ioc.pv("file:open"), lambda value: value == 1, what="the file open")


def stop_capture(ca, ioc) -> None:
    ca.put(ioc.pv("file:capture"), 0)
    ca.wait_for(ioc.pv("file:open"), lambda value: value == 0, what="the file closed")


@pytest.fixture(scope="module")
def ioc(tmp_path_factory):
    # every test's tmp_path lies under the base: the IOC may write there, nowhere else
    with DetectorProcess({**SIM, "DISS_FILE_DIRECTORY": str(tmp_path_factory.getbasetemp())}) \
            as process:
        yield process


@pytest.fixture(scope="module")
def ca(ioc):
    with instant_client(ioc) as client:
        yield client


def test_the_file_holds_every_series_published_while_capturing(ioc, ca, tmp_path):
    path = tmp_path / "ioc.h5"
    before = acquire_series(ca, ioc)  # not captured
    start_capture(ca, ioc, path)
    published = {}
    for _ in range(3):
        numid = acquire_series(ca, ioc)
        published[numid] = {c: checksum(ca.get(ioc.pv(f"{c}:image"))) for c in ("ch0", "ch1")}
    ca.wait_for(ioc.pv("file:captured"), lambda value: value == 3, what="3 series taken")
    stop_capture(ca, ioc)
    after = acquire_series(ca, ioc)  # not captured either
    assert ca.get(ioc.pv("file:written")) == 3  # the last count posted before open fell
    assert ca.text(ioc.pv("file:message")) == ""
    data = read_complete(path)
    numids = list(data["numid"][::NUM_IMAGES])
    assert numids == sorted(published) and before not in numids and after not in numids
    assert list(data["index"]) == [0, 1] * 3
    for channel in ("ch0", "ch1"):
        images = data[f"images/{channel}"].reshape(3, NUM_IMAGES, WIDTH, HEIGHT)
        assert images.dtype == np.uint16
        assert [checksum(series) for series in images] == \
            [published[n][channel] for n in numids]
    with h5py.File(path, "r") as f:  # the layout `pvflow save` writes
        assert f.attrs["detector_prefix"] == ioc.prefix
        assert np.allclose(f["params/ch0/enerj"][:], 3.14)
        assert f["start_ts"].shape == f["exposure"].shape == (6,)


def test_a_capture_that_cannot_start_says_why_and_changes_nothing(ioc, ca, tmp_path):
    missing = tmp_path / "no" / "dir" / "x.h5"
    ca.put(ioc.pv("file:path"), text(str(missing)))
    ca.put(ioc.pv("file:capture"), 1)
    ca.wait_for(ioc.pv("file:message"), lambda value: "no directory" in value, text=True,
                what="the reason")
    assert str(missing.parent) in ca.text(ioc.pv("file:message"))
    ca.wait_for(ioc.pv("file:capture"), lambda value: value == 0, what="capture back to 0")
    assert ca.get(ioc.pv("file:open")) == 0
    assert ioc.pv("file:capture=1 refused") in ca.text(ioc.pv("error_text"))

    not_hdf5 = tmp_path / "notes.txt"
    not_hdf5.write_text("a file of someone else's")
    ca.put(ioc.pv("file:path"), text(str(not_hdf5)))
    ca.put(ioc.pv("file:capture"), 1)  # opened by the writer process, which refuses it
    ca.wait_for(ioc.pv("file:message"), lambda value: str(not_hdf5) in value, text=True,
                what="the reason")
    ca.wait_for(ioc.pv("file:capture"), lambda value: value == 0, what="capture back to 0")
    assert ca.get(ioc.pv("file:open")) == 0
    assert not_hdf5.read_text() == "a file of someone else's"

    ca.put(ioc.pv("file:path"), text("relative.h5"))
    ca.put(ioc.pv("file:capture"), 1)
    ca.wait_for(ioc.pv("file:message"), lambda value: "not an absolute path" in value,
                text=True, what="the reason")

    outside = tmp_path.parents[2] / "outside.h5"  # above pytest's base directory
    ca.put(ioc.pv("file:path"), text(str(outside)))
    ca.put(ioc.pv("file:capture"), 1)
    ca.wait_for(ioc.pv("file:message"), lambda value: "DISS_FILE_DIRECTORY" in value,
                text=True, what="the reason")
    assert not outside.exists() and ca.get(ioc.pv("file:open")) == 0

    ca.put(ioc.pv("file:compression"), "zip")
    ca.wait_for(ioc.pv("error_text"), lambda value: "use none, lz4, bslz4" in value,
                text=True, what="the refusal")
    assert ca.get(ioc.pv("file:compression")) == "none"

    path = tmp_path / "kept.h5"
    start_capture(ca, ioc, path)
    ca.put(ioc.pv("file:path"), text(str(tmp_path / "other.h5")))
    ca.wait_for(ioc.pv("error_text"), lambda value: "file:path=" in value and "capturing"
                in value, text=True, what="the refusal")
    assert ca.text(ioc.pv("file:path")) == str(path)
    stop_capture(ca, ioc)


def test_compressed_files_read_back_as_published(ioc, ca, tmp_path):
    path = tmp_path / "compressed.h5"
    ca.put(ioc.pv("file:compression"), "bslz4")
    try:
        start_capture(ca, ioc, path)
        numid = acquire_series(ca, ioc)
        image = checksum(ca.get(ioc.pv("ch1:image")))
        stop_capture(ca, ioc)
    finally:
        ca.put(ioc.pv("file:compression"), "none")
    assert ca.get(ioc.pv("file:written")) == 1
    data = read_complete(path)
    assert list(data["numid"]) == [numid] * NUM_IMAGES
    assert checksum(data["images/ch1"]) == image
    with h5py.File(path, "r") as f:
        assert f["images/ch1"]._filters  # stored through the bitshuffle filter


def wait_gone(pid: int, timeout: float = 30.0) -> None:
    """Wait for a process that is not our child to end (its pidfd becomes readable)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        assert select.select([fd], [], [], timeout)[0], f"process {pid} still running"
    finally:
        os.close(fd)


@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])
def test_an_ioc_that_dies_or_stops_leaves_every_written_series_whole(tmp_path, stop):
    path = tmp_path / f"{stop}.h5"
    with DetectorProcess({**SIM, "DISS_AUTO_ACQUIRE": "0.005", "DISS_LOG_LEVEL": "info"}) \
            as ioc, instant_client(ioc) as ca:
        start_capture(ca, ioc, path)
        writer = int(re.search(r"writer_pid=(\d+)", ioc.wait_for_line("writer_pid=")).group(1))
        ca.wait_for(ioc.pv("file:written"), lambda value: value >= 5, what="5 series written")
        if stop == "SIGKILL":
            os.kill(ioc.process.pid, signal.SIGKILL)
        else:
            assert ioc.stop() == 0
        wait_gone(writer)  # the IOC's writer process closes the file as its socket closes
    assert len(continuous_series(read_complete(path), NUM_IMAGES)) >= 5
    if stop == "SIGTERM":
        with h5py.File(path, "r") as f:  # closed by the IOC: nothing beyond the last series
            assert f["images/ch0"].shape[0] == f.attrs["complete_images"]


# 512 KiB series, one every 5 ms: a small disk fills within a second
FILLING = {**SIM, "DISSSIM_CHIP_SIZE": "256:256", "DISS_AUTO_ACQUIRE": "0.005"}


def capture_until_refused(ioc: DetectorProcess, path) -> tuple[str, int]:
    """Capture into ``path`` until the disk refuses a series: the reason, and the series
    written before it."""
    with instant_client(ioc) as ca:
        start_capture(ca, ioc, path)
        ca.wait_for(ioc.pv("file:open"), lambda value: value == 0, what="the capture stopped")
        ca.wait_for(ioc.pv("file:capture"), lambda value: value == 0, what="capture back to 0")
        assert ioc.pv("file:") in ca.text(ioc.pv("error_text"))
        return ca.text(ioc.pv("file:message")), ca.get(ioc.pv("file:written"))


def assert_series_before(path, message: str, written: int) -> None:
    """The file holds, whole, the ``written`` series up to the one ``message`` names."""
    first_lost = int(re.search(r"series (\d+) not saved", message).group(1))
    numids = continuous_series(read_complete(path), NUM_IMAGES)
    assert len(numids) == written >= 1
    assert numids == list(range(first_lost - written, first_lost))


def test_a_full_disk_stops_the_capture_naming_the_series_and_keeps_those_before(tmp_path):
    directory = tmp_path / "small"
    path = directory / "full.h5"
    # a 20 MB filesystem: the writer keeps twice a series and 16 MB free
    with SmallDisk(directory, 20) as disk, \
            DetectorProcess({**FILLING, "DISS_FILE_DIRECTORY": str(directory)},
                            launcher=disk.launcher) as ioc:
        message, written = capture_until_refused(ioc, path)
        assert "disk full" in message and str(path) in message, message
        assert_series_before(disk.outside(path), message, written)


def test_a_write_refused_midway_leaves_the_series_before_it_whole(tmp_path):
    path = tmp_path / "limited.h5"
    # the kernel refuses to grow any file of the IOC past 4 MB (EFBIG), midway in a series
    limit = ["prlimit", f"--fsize={4 * 1024 * 1024}", "--"]
    with DetectorProcess(FILLING, launcher=limit) as ioc:
        message, written = capture_until_refused(ioc, path)
        assert "File too large" in message and str(path) in message, message
        assert_series_before(path, message, written)
        again = tmp_path / "again.h5"  # a new writer process: refused again at 4 MB
        assert_series_before(again, *capture_until_refused(ioc, again))
