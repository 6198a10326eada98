"""``pvflow save`` as a subprocess against the real detector IOC (sim backend): the file holds
exactly what the IOC published, killed writers leave whole series, gaps are errors."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import pytest

from pvflow.cli.save import EXIT_MISSING
from pvflow.demo.processes import ServerProcess
from pvflow.storage.series_file import read_complete
from tests.ioc.detector_process import (DetectorProcess, acquire_series, checksum,
                                        continuous_series, instant_client)
from tests.small_disk import SmallDisk

NUM_IMAGES, WIDTH, HEIGHT = 2, 24, 16
SIM = {"DISSSIM_CHIP_SIZE": f"{WIDTH}:{HEIGHT}", "DISSSIM_NUM_IMAGES": str(NUM_IMAGES),
       "DISSSIM_CHANNELS": "ch0:ch1", "DISSSIM_DTYPE": "uint16", "DISS_LOG_LEVEL": "warning"}
STARTED = "saving "
# 512 KiB series, 50 a second: a 20 MB disk fills within a second
FILLING = {**SIM, "DISSSIM_CHIP_SIZE": "256:256", "DISS_AUTO_ACQUIRE": "0.02"}


def save_process(ioc: DetectorProcess, path: Path, *args: str,
                 launcher: Sequence[str] = ()) -> ServerProcess:
    env = {**ioc.epics_env, "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return ServerProcess([*launcher, sys.executable, "-m", "pvflow", "save", ioc.prefix, "--to",
                          str(path), *args], env, STARTED, name="pvflow save",
                         startup_timeout=60, keep_stdin=False)


@pytest.fixture(scope="module")
def ioc():
    with DetectorProcess(SIM) as process:
        yield process


@pytest.fixture(scope="module")
def ca(ioc):
    with instant_client(ioc) as client:
        yield client


@pytest.mark.parametrize("protocol", ["ca", "pva"])
def test_the_file_holds_every_series_exactly_as_published(ioc, ca, tmp_path, protocol):
    path = tmp_path / "series.h5"
    extra = ["--pva"] if protocol == "pva" else ["--dtype", "uint16"]
    published = {}
    with save_process(ioc, path, "--channel", "ch0", "ch1", "--series", "4", *extra) as save:
        for _ in range(4):
            numid = acquire_series(ca, ioc)
            published[numid] = {c: checksum(ca.get(ioc.pv(f"{c}:image"))) for c in ("ch0", "ch1")}
        assert save.wait_exit(60) == 0, save.output
    data = read_complete(path)
    numids = data["numid"].reshape(-1, NUM_IMAGES)[:, 0]
    assert list(numids) == sorted(published) and list(np.diff(numids)) == [1, 1, 1]
    assert list(data["index"]) == [0, 1] * 4
    for channel in ("ch0", "ch1"):
        images = data[f"images/{channel}"].reshape(4, NUM_IMAGES, WIDTH, HEIGHT)
        assert images.dtype == np.uint16
        assert [checksum(series) for series in images] == \
            [published[n][channel] for n in numids]
    with h5py.File(path, "r") as f:  # the layout other HDF5 readers see
        assert f["images/ch0"].chunks == (1, WIDTH, HEIGHT)
        assert f["start_ts"].shape == f["exposure"].shape == (8,)
        assert np.allclose(f["params/ch0/enerj"][:], 3.14)


def test_ctrl_c_closes_the_file_with_every_saved_series(ioc, ca, tmp_path):
    path = tmp_path / "interrupted.h5"
    with save_process(ioc, path) as save:
        numids = [acquire_series(ca, ioc) for _ in range(2)]
        save.wait_for_line("saved 2 series")
        save.process.send_signal(signal.SIGINT)
        assert save.wait_exit(60) == 0, save.output
    with h5py.File(path, "r") as f:
        assert f.attrs["complete_images"] == f["images/ch1"].shape[0] == 2 * NUM_IMAGES
        assert list(f["numid"][::NUM_IMAGES]) == numids


def test_a_cancelled_series_is_skipped_not_reported_missing(ioc, ca, tmp_path):
    path = tmp_path / "cancelled.h5"
    with save_process(ioc, path, "--series", "2") as save:
        numids = [acquire_series(ca, ioc)]
        ca.put(ioc.pv("duration"), 30.0)
        ca.put(ioc.pv("acquire"), 1)
        ca.wait_for(ioc.pv("state"), lambda state: state == "ACQUIRE", what="ACQUIRE")
        ca.put(ioc.pv("cancel"), 1)
        ca.wait_for(ioc.pv("state"), lambda state: state == "READY", what="READY")
        ca.put(ioc.pv("duration"), 0.0)
        numids.append(acquire_series(ca, ioc))
        assert save.wait_exit(60) == 0, save.output
    assert numids[1] == numids[0] + 2  # the sim gave the cancelled series an id
    assert list(read_complete(path)["numid"][::NUM_IMAGES]) == numids


def test_a_killed_writer_leaves_every_completed_series_and_can_append(tmp_path):
    path = tmp_path / "killed.h5"
    # 20 ms exposures: with 1 ms ones a loaded machine's IOC server falls a series behind and
    # the writer rightly stops at start-up (that error has tests of its own)
    with DetectorProcess({**SIM, "DISS_AUTO_ACQUIRE": "0.02"}) as ioc, \
            save_process(ioc, path, "--pva", "--compress", "bslz4") as save:
        saved_line = save.wait_for_line("saved 2", timeout=60)
        os.kill(save.process.pid, signal.SIGKILL)
        save.wait_exit(30)
        saved = int(saved_line.split()[1])
        data = read_complete(path)
        series = len(continuous_series(data, NUM_IMAGES))
        assert series >= saved
        with save_process(ioc, path, "--pva", "--series", "3") as again:
            assert again.wait_exit(60) == 0, again.output
    grown = read_complete(path)
    assert len(grown["numid"]) == (series + 3) * NUM_IMAGES
    assert list(grown["numid"][: series * NUM_IMAGES]) == list(data["numid"])


def test_an_ioc_restart_is_an_error_naming_the_missing_series(tmp_path):
    path = tmp_path / "restart.h5"
    with DetectorProcess(SIM) as ioc, instant_client(ioc) as ca, \
            save_process(ioc, path) as save:
        numids = [acquire_series(ca, ioc) for _ in range(2)]
        save.wait_for_line("saved 2 series")
        ioc.stop()
        ioc.start()
        assert save.wait_exit(60) == 1
    assert f"after series {numids[-1]}" in save.output
    assert "missing" in save.output
    assert list(read_complete(path)["numid"][::NUM_IMAGES]) == numids


def test_bad_input_is_one_line_and_a_nonzero_exit(ioc, tmp_path):
    cases = {
        ("NOSUCHIOC:",): "no detector IOC answers for NOSUCHIOC:",
        (ioc.prefix, "--channel", "ch7"): "no channel ch7 (the IOC has ch0, ch1)",
    }
    env = {**os.environ, **ioc.epics_env}
    import subprocess

    for args, message in cases.items():
        result = subprocess.run([sys.executable, "-m", "pvflow", "save", *args, "--to",
                                 str(tmp_path / "x.h5"), "--timeout", "1"], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    result = subprocess.run([sys.executable, "-m", "pvflow", "save", ioc.prefix, "--to",
                             str(tmp_path / "no" / "dir" / "x.h5")], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "no directory" in result.stderr


def refusal(save: ServerProcess) -> tuple[str, int]:
    """The one line a writer stopped by its disk printed, and the series it says it kept."""
    assert save.wait_exit(60) == EXIT_MISSING, save.output
    lines = [line for line in save.output.splitlines() if line.startswith("pvflow save:")]
    assert len(lines) == 1, save.output
    kept = re.search(r"the (\d+) series saved before it are readable", lines[0])
    assert kept, lines[0]
    return lines[0], int(kept.group(1))


def test_a_full_disk_is_one_line_and_the_file_keeps_every_saved_series(tmp_path):
    directory = tmp_path / "small"
    path = directory / "full.h5"
    with SmallDisk(directory, 20) as disk, DetectorProcess(FILLING) as ioc, \
            save_process(ioc, path, launcher=disk.launcher) as save:
        line, kept = refusal(save)
        assert len(continuous_series(read_complete(disk.outside(path)), NUM_IMAGES)) == kept >= 1
        with h5py.File(disk.outside(path), "r") as f:  # stopped before the series: closed
            assert f["images/ch0"].shape[0] == f.attrs["complete_images"]
    assert f"cannot write {path}" in line and "disk full" in line, line


def test_a_write_refused_midway_leaves_every_saved_series_readable(tmp_path):
    path = tmp_path / "limited.h5"
    # the kernel refuses to grow the file past 4 MB (EFBIG), in the middle of a series
    limit = ["prlimit", f"--fsize={4 * 1024 * 1024}", "--"]
    with DetectorProcess(FILLING) as ioc, save_process(ioc, path, launcher=limit) as save:
        line, kept = refusal(save)
    assert f"cannot write {path}" in line and "File too large" in line, line
    assert len(continuous_series(read_complete(path), NUM_IMAGES)) == kept >= 1
