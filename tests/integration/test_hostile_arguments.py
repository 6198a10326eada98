"""Arguments no request may pass on: counts, timeouts and names refused before anything is
sent, each with a ValueError naming the PV (or the argument), the value and the reason."""

from __future__ import annotations

import asyncio
import math

import pytest

from pvflow import Context


def test_count_beyond_the_element_count_is_refused_before_sending(context) -> None:
    context.connect(["T:empty"])
    with pytest.raises(ValueError, match=r"T:empty.*1000000000.*10 elements"):
        context.get("T:empty", count=10**9)
    assert len(context.get("T:empty", count=10)) == 10  # the server was never asked


def test_count_beyond_the_element_count_is_refused_on_first_connect(softioc) -> None:
    with Context(softioc.env, timeout=5.0) as ctx:  # not connected yet: refused on connect
        with pytest.raises(ValueError, match=r"T:shorts.*count 17"):
            ctx.get("T:shorts", count=17)


@pytest.mark.parametrize("count", [-1, "abc", 2.5, True])
def test_count_that_is_not_a_whole_number_names_the_pv(context, count) -> None:
    with pytest.raises(ValueError, match=r"T:empty.*count"):
        context.get("T:empty", count=count)


def test_count_check_applies_to_the_async_twin(context) -> None:
    async def read() -> None:
        await context.get_async("T:empty", count=-1)

    with pytest.raises(ValueError, match="T:empty"):
        asyncio.run(read())


@pytest.mark.parametrize("timeout", ["abc", math.nan, -1, -0.5, True])
def test_bad_timeouts_are_refused_naming_the_argument(context, timeout) -> None:
    for call in (lambda: context.get("T:ai", timeout=timeout),
                 lambda: context.put("T:ao", 1.0, timeout=timeout),
                 lambda: context.connect(["T:ai"], timeout=timeout),
                 lambda: context.get_many(["T:ai"], timeout=timeout)):
        with pytest.raises(ValueError, match="timeout"):
            call()


def test_infinite_timeout_waits_like_none(context) -> None:
    assert context.get("T:ai", timeout=math.inf) == 1.5
    assert context.get_many(["T:ai"], timeout=math.inf) == {"T:ai": 1.5}


def test_bad_context_timeout_is_refused() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Context({}, timeout=-1)


def test_unknown_scheme_is_refused_not_searched(context) -> None:
    with pytest.raises(ValueError, match="unknown scheme 'xyz://'"):
        context.get("xyz://T:ai")
    with pytest.raises(ValueError, match="xyz://"):
        context.get_many(["T:ai", "xyz://T:ai"])
    assert "xyz://T:ai" not in context._engines["ca"].by_name
