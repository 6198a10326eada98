"""pvflow's ophyd-async backend against the standard softIoc: connect, read, describe, put,
monitor on the caller's loop, and the converter coercions with their errors."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

pytest.importorskip("ophyd_async")

from ophyd_async.core import StrictEnum  # noqa: E402

from pvflow import Context  # noqa: E402
from pvflow.ophyd_async import PvflowSignalBackend  # noqa: E402


class Choices(StrictEnum):
    ZERO = "zero"
    ONE = "one"
    TWO = "two"


def signal(context: Context, datatype, pv: str):
    from ophyd_async.core import SignalRW

    return SignalRW(PvflowSignalBackend(datatype, pv, pv, context=context), name="sig")


def test_read_write_and_describe(context):
    async def run():
        number = signal(context, float, "T:ao")
        await number.connect(timeout=10)
        await number.set(4.5)
        assert await number.get_value() == 4.5
        choice = signal(context, Choices, "T:enum")
        await choice.connect(timeout=10)
        await choice.set(Choices.TWO)
        assert await choice.get_value() is Choices.TWO
        text = signal(context, str, "T:chars")
        await text.connect(timeout=10)
        await text.set("beam on")
        assert await text.get_value() == "beam on"
        array = signal(context, None, "T:wave")
        await array.connect(timeout=10)
        await array.set(np.array([1.0, 2.0, 3.0]))
        assert list(await array.get_value()) == [1.0, 2.0, 3.0]
        reading = signal(context, float, "T:ai")
        await reading.connect(timeout=10)
        key = (await reading.describe())["sig"]
        assert key["units"] == "mm" and key["precision"] == 3

    asyncio.run(run())


def test_monitor_runs_on_the_loop_thread_starting_with_the_current_value(context):
    async def run():
        number = signal(context, int, "T:long")
        await number.connect(timeout=10)
        seen = []
        arrived = asyncio.Event()
        loop_thread = threading.current_thread()

        def callback(reading):
            seen.append((reading["value"], threading.current_thread() is loop_thread))
            arrived.set()

        number._connector.backend.set_callback(callback)
        await asyncio.wait_for(arrived.wait(), 10)
        number._connector.backend.set_callback(None)
        assert seen[0] == (42, True)

    asyncio.run(run())


def test_a_datatype_the_pv_cannot_take_names_the_pv(context):
    async def run():
        wrong = signal(context, int, "T:string")
        with pytest.raises(TypeError, match="T:string with inferred datatype str cannot be "
                                            "coerced to int"):
            await wrong.connect(timeout=10)

    asyncio.run(run())
