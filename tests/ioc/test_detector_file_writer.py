"""The IOC's file writer on its own (no EPICS), with its real writer process: a writer that
falls behind stops the capture naming the first series not saved, and the file keeps every
series before it."""

from __future__ import annotations

import os
import signal
import threading

import numpy as np

from pvflow.ioc.detector import file_writer
from pvflow.ioc.detector.file_writer import FileWriter
from pvflow.storage.series import SeriesData
from pvflow.storage.series_file import read_complete

SHAPE = (4, 4)


def series(numid: int) -> SeriesData:
    image = np.full((1, *SHAPE), numid, dtype=np.uint16)
    return SeriesData(numid, f"uuid-{numid}", {"ch0": image}, np.zeros(1), np.zeros(1))


def test_a_writer_that_falls_behind_names_the_first_series_not_saved(tmp_path, monkeypatch):
    monkeypatch.setattr(file_writer, "QUEUE_BYTES", 1)  # two series may wait, no more
    opened, taken_first, closed = threading.Event(), threading.Event(), threading.Event()
    reasons: list[str] = []

    def on_closed(reason: str) -> None:
        reasons.append(reason)
        closed.set()

    writer = FileWriter(["ch0"], SHAPE, np.dtype(np.uint16), 32, opened.set,
                        lambda count: count == 1 and taken_first.set(), lambda count: None,
                        on_closed)
    path = tmp_path / "behind.h5"
    try:
        writer.open(str(path), None, {}, {})
        assert opened.wait(30), "the writer process did not open the file"
        assert writer.process_id is not None
        os.kill(writer.process_id, signal.SIGSTOP)  # the disk stalls
        try:
            writer.submit(series(1))
            assert taken_first.wait(30)  # the writer's thread now waits on the process
            for numid in range(2, 7):
                writer.submit(series(numid))
            assert not writer.capturing
        finally:
            os.kill(writer.process_id, signal.SIGCONT)
        assert closed.wait(30), "the capture did not close"
    finally:
        writer.stop(30)
    assert reasons == ["series 4 not saved: the disk takes series slower than the detector "
                       "makes them (2 series waited)"]
    data = read_complete(path)
    assert list(data["numid"]) == [1, 2, 3]
    assert [int(image[0, 0]) for image in data["images/ch0"]] == [1, 2, 3]
