"""pvflow's ophyd-async backend over pvAccess: the C softIoc's QSRV (pvxslibs) for NTScalar,
NTEnum and arrays, a p4p server for NTTable and NTNDArray, and the switch that puts
ophyd-async's own ``pva://`` factories and PVI devices on pvflow."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

pytest.importorskip("ophyd_async")

from ophyd_async.core import (  # noqa: E402
    Array1D,
    NotConnectedError,
    SignalRW,
    StrictEnum,
    Table,
    TriggerableCommand,
)
from ophyd_async.epics.core import (  # noqa: E402
    EpicsOptions,
    _pvi_connector,
    _signal,
    epics_signal_rw,
)

from pvflow import Context  # noqa: E402
from pvflow.ophyd_async import (  # noqa: E402
    PvflowCommandBackend,
    PvflowPvaCommandBackend,
    PvflowPvaSignalBackend,
    PvflowSignalBackend,
    restore_default_backends,
    use_pvflow_backend,
)
from tests.integration.test_pva_p4p_server import p4p_env  # noqa: E402,F401  (its server)
from tests.servers import SoftIoc  # noqa: E402

TIMEOUT = 10.0

DB = """
record(ai, "$(P)ai") { field(VAL, "1.5") field(EGU, "mm") field(PREC, "3")
    field(HOPR, "10") field(LOPR, "-10") field(HIHI, "8") field(HIGH, "6") field(LOW, "-6")
    field(LOLO, "-8") field(HHSV, "MAJOR") field(HSV, "MINOR") field(LSV, "MINOR")
    field(LLSV, "MAJOR") field(PINI, "YES") }
record(ao, "$(P)ao") { field(VAL, "2.5") field(PINI, "YES") }
record(longout, "$(P)long") { field(VAL, "42") field(PINI, "YES") }
record(mbbo, "$(P)enum") { field(ZRST, "zero") field(ONST, "one") field(TWST, "two")
    field(PINI, "YES") }
record(bo, "$(P)bool") { field(ZNAM, "Off") field(ONAM, "On") field(PINI, "YES") }
record(stringout, "$(P)string") { field(VAL, "hello") field(PINI, "YES") }
record(waveform, "$(P)wave") { field(FTVL, "DOUBLE") field(NELM, "16") }
record(waveform, "$(P)chars") { field(FTVL, "CHAR") field(NELM, "256") }
record(waveform, "$(P)strings") { field(FTVL, "STRING") field(NELM, "4") }
record(ao, "$(P)target") { }
record(seq, "$(P)slow") { field(DLY1, "0.5") field(DOL1, "$(P)slow.VAL NPP")
    field(LNK1, "$(P)target PP") }
record(ao, "$(P)held_target") { }
record(seq, "$(P)held") { field(DLY1, "600") field(DOL1, "$(P)held.VAL NPP")
    field(LNK1, "$(P)held_target PP") }
"""


class Choices(StrictEnum):
    ZERO = "zero"
    ONE = "one"
    TWO = "two"


class Rows(Table):
    """The columns of the p4p server's ``P:table``, each with the dtype it is read as."""

    x: Array1D[np.float64]
    name: Sequence[str]
    count: Array1D[np.int32]


@pytest.fixture(scope="module")
def pva_ioc():
    ioc = SoftIoc(DB.replace("$(P)", "T:"), pva=True)
    ioc.start()
    yield ioc
    ioc.close()


@pytest.fixture
def context(pva_ioc):
    with Context(pva_ioc.env, timeout=5.0) as ctx:
        yield ctx


@pytest.fixture
def p4p_context(p4p_env):
    with Context(p4p_env, timeout=5.0) as ctx:
        yield ctx


def signal(context: Context, datatype, pv: str) -> SignalRW:
    return SignalRW(PvflowSignalBackend(datatype, pv, pv, context=context), name="sig")


def bare_pva_signal(context: Context, datatype, pv: str) -> SignalRW:
    """As ophyd-async builds one for ``pva://pv``: the scheme stripped, the class says PVA."""
    return SignalRW(PvflowPvaSignalBackend(datatype, pv, pv, context=context), name="sig")


def test_scalars_enums_strings_and_arrays_round_trip(context):
    async def run():
        cases = [(float, "ao", 4.5), (int, "long", 7), (Choices, "enum", Choices.TWO),
                 (bool, "bool", True), (str, "string", "goodbye"), (str, "chars", "beam on"),
                 (Array1D[np.float64], "wave", np.array([1.0, 2.0, 3.0])),
                 (Sequence[str], "strings", ["a", "b"])]
        for datatype, record, value in cases:
            sig = bare_pva_signal(context, datatype, f"T:{record}")
            await sig.connect(timeout=TIMEOUT)
            await sig.set(value)
            got = await sig.get_value()
            if isinstance(value, np.ndarray):
                assert got.dtype == np.float64 and got.tolist() == value.tolist()
            else:
                assert got == value and type(got) is type(value), record

    asyncio.run(run())


def test_describe_carries_the_records_metadata(context):
    async def run():
        number = bare_pva_signal(context, float, "T:ai")
        await number.connect(timeout=TIMEOUT)
        key = (await number.describe())["sig"]
        assert key["source"] == "pva://T:ai"
        assert (key["dtype"], key["units"], key["precision"]) == ("number", "mm", 3)
        assert key["limits"]["alarm"] == {"low": -8.0, "high": 8.0}
        assert key["limits"]["warning"] == {"low": -6.0, "high": 6.0}
        assert key["limits"]["display"] == {"low": -10.0, "high": 10.0}
        choice = bare_pva_signal(context, None, "T:enum")
        await choice.connect(timeout=TIMEOUT)
        key = (await choice.describe())["sig"]
        assert key["choices"] == ["zero", "one", "two"] and "units" not in key
        text = bare_pva_signal(context, str, "T:string")
        await text.connect(timeout=TIMEOUT)
        key = (await text.describe())["sig"]
        assert key["dtype"] == "string" and "units" not in key and "precision" not in key

    asyncio.run(run())


def test_monitor_starts_with_the_current_value_then_every_update_in_order_on_the_loop(
        context):
    async def run():
        sig = bare_pva_signal(context, float, "T:ao")
        await sig.connect(timeout=TIMEOUT)
        await sig.set(-1.0)
        loop_thread = threading.current_thread()
        seen: list[tuple[float, bool]] = []
        first, last = asyncio.Event(), asyncio.Event()

        def callback(reading):
            seen.append((reading["value"], threading.current_thread() is loop_thread))
            first.set()
            if reading["value"] == 20.0:
                last.set()

        backend = sig._connector.backend
        backend.set_callback(callback)
        try:
            with pytest.raises(RuntimeError, match="already set"):
                backend.set_callback(callback)
            await asyncio.wait_for(first.wait(), TIMEOUT)
            for value in range(1, 21):
                await sig.set(float(value))
            await asyncio.wait_for(last.wait(), TIMEOUT)
        finally:
            backend.set_callback(None)
        assert seen == [(float(value), True) for value in range(-1, 21) if value != 0]

    asyncio.run(run())


def test_put_waits_for_processing_unless_told_not_to(context):
    async def run():
        waited = bare_pva_signal(context, int, "T:slow")
        await waited.connect(timeout=TIMEOUT)
        target = bare_pva_signal(context, float, "T:target")
        await target.connect(timeout=TIMEOUT)
        await waited.set(3)  # done once the sequence's delayed output has been written
        assert await target.get_value() == 3.0

        held = SignalRW(PvflowPvaSignalBackend(int, "T:held", "T:held",
                                               EpicsOptions(wait=False), context=context),
                        name="held")
        await held.connect(timeout=TIMEOUT)
        held_target = bare_pva_signal(context, float, "T:held_target")
        await held_target.connect(timeout=TIMEOUT)
        await held.set(5, timeout=TIMEOUT)  # the output is 600 s away: this must not wait
        assert await held_target.get_value() == 0.0

    asyncio.run(run())


def test_a_put_given_up_by_its_timeout_leaves_the_connection_working(context):
    async def give_up():
        sig = bare_pva_signal(context, int, "T:slow")
        await sig.connect(timeout=TIMEOUT)
        with pytest.raises(asyncio.TimeoutError):
            await sig.set(4, timeout=0.1)  # the record takes 0.5 s: the put is given up

    asyncio.run(give_up())  # its loop is closed when the server's answer comes
    context.put("pva://T:slow", 5)  # queued behind the given-up put on the same operation
    assert context.get("pva://T:target") == 5.0


def test_a_wrong_datatype_or_a_missing_pv_names_the_pv(context):
    async def run():
        with pytest.raises(TypeError, match="T:string with inferred datatype str cannot be "
                                            "coerced to int"):
            await bare_pva_signal(context, int, "T:string").connect(timeout=TIMEOUT)
        with pytest.raises(TypeError, match="T:enum has 3 choices, can't map to bool"):
            await bare_pva_signal(context, bool, "T:enum").connect(timeout=TIMEOUT)
        with pytest.raises(NotConnectedError, match="pva://T:nothing"):
            await bare_pva_signal(context, float, "T:nothing").connect(timeout=0.2)

    asyncio.run(run())


def test_commands_take_integer_and_enum_pvs_only(context):
    async def run():
        await context.put_async("pva://T:long", 0)
        command = TriggerableCommand(PvflowCommandBackend("pva://T:long", context=context))
        await command.connect(timeout=TIMEOUT)
        await command.trigger()
        assert await context.get_async("pva://T:long") == 1
        float_command = PvflowPvaCommandBackend("T:ao", context=context)
        with pytest.raises(TypeError, match="requires a scalar boolean, scalar numeric, or "
                                            "enum PV"):
            await float_command.connect(timeout=TIMEOUT)

    asyncio.run(run())


def test_nttable_as_a_table_subclass_and_as_a_plain_table(p4p_context):
    async def run():
        rows = signal(p4p_context, Rows, "pva://P:table")
        await rows.connect(timeout=TIMEOUT)
        first = await rows.get_value()
        assert isinstance(first, Rows) and first.name == ["a", "b"]
        assert first.count.dtype == np.int32 and first.x.tolist() == [1.5, 2.5]
        key = (await rows.describe())["sig"]
        assert key["dtype"] == "array" and key["shape"] == [2]
        assert key["dtype_numpy"] == [("x", "<f8"), ("name", "|S40"), ("count", "<i4")]

        changed = Rows(x=np.array([9.0]), name=["z"], count=np.array([7], np.int32))
        first_update, second_update = asyncio.Event(), asyncio.Event()
        seen: list[Table] = []

        def callback(reading):
            seen.append(reading["value"])
            (first_update if len(seen) == 1 else second_update).set()

        rows._connector.backend.set_callback(callback)
        try:
            await asyncio.wait_for(first_update.wait(), TIMEOUT)
            await rows.set(changed)
            await asyncio.wait_for(second_update.wait(), TIMEOUT)
        finally:
            rows._connector.backend.set_callback(None)
        assert [(table.name, table.count.tolist()) for table in seen] == [
            (["a", "b"], [1, 2]), (["z"], [7])]
        assert all(type(table) is Rows for table in seen)

        plain = signal(p4p_context, None, "pva://P:table")
        await plain.connect(timeout=TIMEOUT)
        value = await plain.get_value()
        assert type(value) is Table and value.name == ["z"]

    asyncio.run(run())


def test_ntndarray_as_a_shaped_array_that_cannot_be_written(p4p_context):
    async def run():
        image = signal(p4p_context, np.ndarray, "pva://P:image")
        await image.connect(timeout=TIMEOUT)
        pixels = await image.get_value()
        assert type(pixels) is np.ndarray and pixels.shape == (480, 640)
        assert pixels[1, 2] == (640 + 2) % 4093
        key = (await image.describe())["sig"]
        assert (key["shape"], key["dtype_numpy"]) == ([480, 640], "<u2")
        with pytest.raises(TypeError, match="Writing to NDArray not supported"):
            await image.set(np.zeros(3))

    asyncio.run(run())


def test_the_switch_routes_pva_names_and_pvi_devices_to_pvflow_and_back():
    originals = (_signal.PvaSignalBackend, _signal.PvaCommandBackend,
                 _pvi_connector.PvaSignalBackend, _pvi_connector.pvget_with_timeout)
    use_pvflow_backend()
    try:
        backend = epics_signal_rw(float, "pva://X:ao")._connector.backend
        assert type(backend) is PvflowPvaSignalBackend and backend.read_pv == "X:ao"
        assert backend.source("", True) == "pva://X:ao"
        assert _signal.PvaCommandBackend is PvflowPvaCommandBackend
        assert _pvi_connector.PvaSignalBackend is PvflowPvaSignalBackend
        assert _pvi_connector.pvget_with_timeout is not originals[3]
    finally:
        restore_default_backends()
    assert (_signal.PvaSignalBackend, _signal.PvaCommandBackend,
            _pvi_connector.PvaSignalBackend, _pvi_connector.pvget_with_timeout) == originals
