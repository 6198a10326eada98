"""The series assembler on hand-made updates: windows by timestamp, whatever the order."""

from __future__ import annotations

import pytest

from pvflow.storage.assembler import SeriesAssembler
from pvflow.storage.series import IncompleteSeriesError, SeriesError

KEYS = ("numid", "image")


def opened(floor: float = 1.0) -> SeriesAssembler:
    assembler = SeriesAssembler(KEYS, {"numid": "P:numid", "image": "P:ch0:image"})
    assembler.add("acquire", floor, 0)
    return assembler


def series(assembler: SeriesAssembler, rise: float, values: dict[str, tuple[float, object]],
           fall: float) -> None:
    assembler.add("acquire", rise, 1)
    for key, (stamp, value) in values.items():
        assembler.add(key, stamp, value)
    assembler.add("acquire", fall, 0)


def test_updates_pair_by_timestamp_even_when_the_fall_comes_first():
    assembler = opened()
    assembler.add("acquire", 2.0, 1)
    assembler.add("acquire", 3.0, 0)        # the fall overtook the data
    assert assembler.take() == []           # undecided: the data may still come
    assembler.add("image", 2.5, "img-0")
    assembler.add("numid", 2.6, 0)
    assembler.add("image", 4.5, "img-1")    # the next series is already on its way
    (window,) = assembler.take()
    assert window.values == {"numid": 0, "image": "img-0"} and window.closed_at == 3.0


def test_values_from_before_the_subscription_are_dropped():
    assembler = SeriesAssembler(KEYS)
    assembler.add("image", 0.5, "old")      # the current value when subscribing
    assembler.add("acquire", 1.0, 0)
    assembler.add("numid", 0.6, -1)         # also the current value
    series(assembler, 2.0, {"image": (2.5, "new"), "numid": (2.6, 7)}, 3.0)
    (window,) = assembler.take()
    assert window.values == {"numid": 7, "image": "new"}


def test_a_cancelled_series_publishes_nothing_and_is_skipped():
    assembler = opened()
    series(assembler, 2.0, {}, 3.0)
    assert assembler.take(give_up=True) == []
    series(assembler, 4.0, {"image": (4.5, "a"), "numid": (4.6, 1)}, 5.0)
    assert [w.values["numid"] for w in assembler.take()] == [1]


def test_a_partial_series_names_the_series_and_what_it_lacks():
    assembler = opened()
    series(assembler, 2.0, {"numid": (2.6, 4)}, 3.0)
    assembler.add("numid", 4.6, 5)
    assert assembler.take() == []           # the image might still come ...
    with pytest.raises(SeriesError, match=r"series 4 is incomplete: no P:ch0:image") as info:
        assembler.take(give_up=True)        # ... until the caller stops waiting
    assert isinstance(info.value, IncompleteSeriesError) and info.value.numid == 4


def test_an_update_for_a_closed_series_is_an_error():
    assembler = opened()
    series(assembler, 2.0, {"image": (2.5, "a"), "numid": (2.6, 1)}, 3.0)
    assembler.take()
    with pytest.raises(SeriesError, match="P:ch0:image.*after its series was closed"):
        assembler.add("image", 2.7, "late")


def test_two_updates_of_one_pv_in_one_series_are_an_error():
    assembler = opened()
    series(assembler, 2.0, {"image": (2.5, "a"), "numid": (2.6, 1)}, 3.0)
    assembler.add("image", 2.55, "again")
    with pytest.raises(SeriesError, match="two updates within one series of P:ch0:image"):
        assembler.take()


def test_a_series_before_a_late_monitor_started_is_skipped():
    assembler = opened()
    assembler.add("numid", 0.9, 3)          # numid's current value: an earlier series
    series(assembler, 2.0, {"numid": (2.6, 4)}, 3.0)
    assert assembler.take() == []           # the image may still come for series 4 ...
    series(assembler, 3.2, {"image": (3.5, "img-5"), "numid": (3.6, 5)}, 4.0)
    # ... but the image monitor's first update is of series 5: it started too late for 4
    assert [w.values for w in assembler.take()] == [{"numid": 5, "image": "img-5"}]
    assert assembler.joined_late == 1


def test_an_update_from_before_the_bookkeeping_may_arrive_late():
    assembler = SeriesAssembler(KEYS)
    assembler.add("image", 0.5, "old")      # subscribed before acquire ...
    assembler.add("acquire", 1.0, 0)
    assembler.add("image", 0.8, "older")    # ... and its next update came on a slower circuit
    series(assembler, 2.0, {"image": (2.5, "new"), "numid": (2.6, 7)}, 3.0)
    (window,) = assembler.take()
    assert window.values == {"numid": 7, "image": "new"}
