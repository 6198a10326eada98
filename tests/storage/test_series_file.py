"""The HDF5 series file on its own: a series taken back or refused by the disk midway leaves
the file whole (full disks: tests/ioc/test_detector_file.py and test_save.py, on a real one)."""

from __future__ import annotations

import multiprocessing
import resource

import h5py
import numpy as np
import pytest

from pvflow.storage.series import SeriesData
from pvflow.storage.series_file import SeriesFile, WriteRefusedError, read_complete


def series(numid: int) -> SeriesData:
    images = np.full((2, 4, 3), numid, dtype=np.uint16)
    return SeriesData(numid, f"uuid-{numid}", {"ch0": images}, np.arange(2.0), np.ones(2))


def test_the_last_series_taken_back_leaves_the_file_whole_and_appendable(tmp_path):
    path = tmp_path / "retract.h5"
    with SeriesFile(path, ["ch0"], (4, 3), np.uint16, params={"ch0": ("enerj",)}) as file:
        file.append(series(7))
        file.append(series(8))
        file.retract_last()
        assert (file.series, file.images) == (1, 2)
        with pytest.raises(ValueError, match="no series appended by this writer"):
            file.retract_last()             # only the one written last can be doubted
        file.append(series(9))
    data = read_complete(path)
    assert list(data["numid"]) == [7, 7, 9, 9] and list(data["index"]) == [0, 1, 0, 1]
    assert [int(image[0, 0]) for image in data["images/ch0"]] == [7, 7, 9, 9]


def write_until_refused(path: str, limit: int) -> None:
    """In a process of its own: the kernel refuses to grow any file past ``limit`` bytes
    (EFBIG), midway through a series, and still refuses as the file closes."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    file = SeriesFile(path, ["ch0"], (256, 256), np.uint16)
    for numid in range(100):
        try:
            file.append(SeriesData(numid, f"uuid-{numid}",
                                   {"ch0": np.full((1, 256, 256), numid, dtype=np.uint16)},
                                   np.zeros(1), np.ones(1)))
        except WriteRefusedError as exc:
            assert str(exc) == f"[Errno 27] writing series {numid} failed: File too large"
            break
    file.close()


def test_a_write_refused_midway_leaves_a_readable_file_of_the_series_before(tmp_path):
    path = tmp_path / "refused.h5"
    child = multiprocessing.get_context("spawn").Process(
        target=write_until_refused, args=(str(path), 1024 * 1024))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    data = read_complete(path)
    numids = list(data["numid"])
    assert 1 <= len(numids) < 100 and numids == list(range(len(numids)))
    assert [int(image[0, 0]) for image in data["images/ch0"]] == numids
    with h5py.File(path, "r") as f:  # nothing of the refused series is counted
        assert f.attrs["complete_images"] == len(numids)
