"""A series whose successor arrives incomplete is never left standing in the bluesky path.

A detector IOC's database keeps at most one pending update per array or string subscription,
and its server reads the value when it takes the update: when it falls a series behind, series
N goes out with series N+1's image and series N+1 lacks it. ``DissDetector`` counts series N
(its StreamDatum may already be out) before series N+1 shows this, so the writer must take
series N back out of the file and fail naming series N, not only N+1.

The IOC here is a C softIoc holding the Diss records; the test publishes the series itself,
record by record, in the order a Diss IOC does, so the incomplete series comes every time.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from pvflow import Context
from tests.servers import SoftIoc

pytest.importorskip("ophyd_async")

PIXELS = 4 * 4
DB = """
record(longout, "D:acquire") { field(VAL, "0") }
record(longout, "D:numid") { field(VAL, "-1") }
record(stringout, "D:uuid") { field(VAL, "none") }
record(waveform, "D:start_ts") { field(FTVL, "DOUBLE") field(NELM, "1") }
record(waveform, "D:acq_td") { field(FTVL, "DOUBLE") field(NELM, "1") }
record(stringin, "D:channels") { field(VAL, "ch0") }
record(waveform, "D:ch0:image") { field(FTVL, "USHORT") field(NELM, "16") }
record(longin, "D:ch0:asize0") { field(VAL, "1") }
record(longin, "D:ch0:asize1") { field(VAL, "4") }
record(longin, "D:ch0:asize2") { field(VAL, "4") }
"""


def publish(context: Context, numid: int, whole: bool = True) -> None:
    """One series as a Diss IOC publishes it; ``whole=False`` leaves out what the server
    drops when it falls behind (the arrays and strings), keeping the scalars."""
    context.put("D:acquire", 1)
    if whole:
        context.put("D:ch0:image", np.full(PIXELS, 40000 + numid, dtype=np.uint16))
        context.put("D:start_ts", [float(numid)])
        context.put("D:acq_td", [0.001])
        context.put("D:uuid", f"uuid-{numid}")
    context.put("D:numid", numid)
    context.put("D:acquire", 0)


@pytest.fixture(scope="module")
def scripted_ioc():
    with SoftIoc(DB) as ioc:
        yield ioc


def test_incomplete_series_condemns_the_counted_one_before_it(scripted_ioc, tmp_path) -> None:
    from pvflow.bluesky.diss_detector import DetectorError, SeriesWriter
    from pvflow.storage.detector_source import read_layout
    from pvflow.storage.series_file import read_complete

    async def scan() -> SeriesWriter:
        with Context(scripted_ioc.env, timeout=5.0) as context:
            layout = read_layout(context, "D:", ["ch0"], params=(), timeout=5.0)
            writer = SeriesWriter(context, layout, tmp_path / "images.h5", None,
                                  asyncio.get_running_loop(), None, None)
            await asyncio.to_thread(writer.start, 10.0)
            try:
                publish(context, 1)
                publish(context, 2, whole=False)
                publish(context, 3)  # settles series 2 at once: none of its PVs can come now
                await asyncio.to_thread(writer._thread.join, 30)
                assert not writer._thread.is_alive(), "the writer did not stop"
                assert await writer.written_signal.get_value() == 1  # series 1 was counted
            finally:
                await asyncio.to_thread(writer.stop)
            return writer

    writer = asyncio.run(scan())
    assert writer.failure is not None
    message = str(writer.failure)
    assert "series 1 was counted" in message and "series 2 is incomplete" in message
    with pytest.raises(DetectorError, match="series 1 was counted"):
        writer.raise_failure()
    assert len(read_complete(tmp_path / "images.h5")["numid"]) == 0  # series 1 taken back
