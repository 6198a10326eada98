"""The PVA client against the C softIoc's pvAccess server (qsrv): types, forms, puts, bulk
reads mixed with CA, monitors, errors, reconnection, threads and asyncio."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import sys
import threading

import numpy as np
import pytest

from pvflow import Context, PVFlowError, PVTimeoutError, Reading
from tests.integration.background_reads import reading_meanwhile
from tests.servers import SoftIoc


@pytest.fixture(scope="module")
def pva_ioc(pva_softioc):
    return pva_softioc


@pytest.fixture
def context(pva_context):
    return pva_context


def test_scalars_and_forms(context) -> None:
    assert context.get("pva://T:ai") == 1.5
    assert context.get("pva://T:long") == 42
    assert context.get("pva://T:string") == "hello"
    reading = context.get("pva://T:ai", form="time")
    assert isinstance(reading, Reading) and reading.value == 1.5 and reading.timestamp > 1.6e9
    ctrl = context.get("pva://T:ai", form="ctrl")
    assert (ctrl.units, ctrl.precision, ctrl.display_limits) == ("mm", 3, (-10, 10))
    assert ctrl.alarm_limits == (-8, 8) and ctrl.warning_limits == (-6, 6)


def test_same_reading_fields_as_ca(context) -> None:
    over_ca, over_pva = context.get("T:ai", form="ctrl"), context.get("pva://T:ai", form="ctrl")
    for field in ("value", "severity", "status", "units", "precision", "display_limits",
                  "alarm_limits", "warning_limits"):
        assert getattr(over_ca, field) == getattr(over_pva, field), field
    context.put("pva://T:ai", 9.0)
    try:
        ca, pva = context.get("T:ai", form="time"), context.get("pva://T:ai", form="time")
        assert (pva.severity, pva.status) == (ca.severity, ca.status) == (2, 3)  # MAJOR HIHI
    finally:
        context.put("pva://T:ai", 1.5)


@pytest.mark.parametrize("name, values, dtype", [
    ("T:wave", np.linspace(0, 1, 300), np.float64),
    ("T:shorts", np.arange(-5, 5), np.int16),
    ("T:longs", np.arange(16) * 100_000, np.int32),
])
def test_arrays_round_trip(context, name, values, dtype) -> None:
    context.put(f"pva://{name}", values)
    got = context.get(f"pva://{name}")
    assert got.dtype == dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, values.astype(dtype))


def test_big_waveform(context) -> None:
    values = np.random.default_rng(2).random(2_000_000)
    context.put("pva://T:big", values)
    np.testing.assert_array_equal(context.get("pva://T:big"), values)


def test_enum_by_index_and_by_choice(context) -> None:
    context.put("pva://T:enum", "two")
    assert context.get("pva://T:enum") == 2
    assert context.get("pva://T:enum", as_string=True) == "two"
    context.put("pva://T:enum", 1)
    assert context.get("T:enum") == 1
    assert context.get("pva://T:enum", form="ctrl").enum_strings == ("zero", "one", "two")
    with pytest.raises(ValueError, match="T:enum"):
        context.put("pva://T:enum", "seven")


def test_get_many_mixed_protocols(context) -> None:
    names = ["pva://T:ai", "T:long", "pva://T:string", "ca://T:ai", "pva://T:nowhere"]
    results = context.get_many(names, timeout=1.0)
    assert results["pva://T:ai"] == 1.5 and results["T:long"] == 42
    assert results["pva://T:string"] == "hello" and results["ca://T:ai"] == 1.5
    error = results["pva://T:nowhere"]
    assert isinstance(error, PVTimeoutError) and "T:nowhere" in str(error)
    readings = context.get_many(["pva://T:ai", "T:ai"], form="ctrl")
    assert readings["pva://T:ai"].units == readings["T:ai"].units == "mm"


def test_bad_input_names_the_pv(context) -> None:
    with pytest.raises(ValueError, match="T:long.*not a number"):
        context.put("pva://T:long", "not-a-number")
    with pytest.raises(PVFlowError, match="T:readonly"):
        context.put("pva://T:readonly", 4.0)
    with pytest.raises(PVTimeoutError, match="T:absent"):
        context.get("pva://T:absent", timeout=0.3)
    with pytest.raises(ValueError):
        context.get("pva://")


def test_monitor_delivers_every_update_in_order(context) -> None:
    context.put("pva://T:long", 0)
    seen: list[int] = []
    done = threading.Event()
    connections: list[bool] = []

    def on_update(reading: Reading) -> None:
        seen.append(reading.value)
        if reading.value == 200:
            done.set()

    with context.subscribe("pva://T:long", on_update,
                           connection_callback=connections.append) as subscription:
        context.get("pva://T:long")
        for value in range(1, 201):
            context.put("pva://T:long", value, wait=False)
        assert done.wait(10)
    assert connections[0] is True and subscription.dropped == 0
    updates = [value for value in seen if value > 0]
    assert updates == sorted(updates) and updates[-1] == 200


def test_info(context) -> None:
    info = context.info("pva://T:wave")
    assert info.native_type == "double[]" and info.state == "connected"
    assert context.info("pva://T:ai").native_type == "double"


def test_threads_share_the_context(context) -> None:
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(100):
                assert context.get("pva://T:ai") == 1.5
                assert context.get_many(["pva://T:long", "pva://T:string"])["pva://T:string"] \
                    == "hello"
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors


def test_async_twins(context) -> None:
    async def main() -> tuple:
        await context.put_async("pva://T:ao", 3.25)
        value = await context.get_async("pva://T:ao")
        many = await context.get_many_async(["pva://T:ao", "T:ao"])
        return value, many

    value, many = asyncio.run(main())
    assert value == 3.25 and many == {"pva://T:ao": 3.25, "T:ao": 3.25}


def test_readings_know_their_name_and_read_well(context) -> None:
    reading = context.get("pva://T:ai", form="time")
    assert reading.name == "pva://T:ai"
    assert repr(reading).startswith("Reading('pva://T:ai', value=") and "None" not in repr(reading)
    many = context.get_many(["T:ai", "pva://T:enum"], form="ctrl")
    assert [found.name for found in many.values()] == ["T:ai", "pva://T:enum"]
    assert asyncio.run(context.get_async("T:ai", form="time")).name == "T:ai"


def test_info_has_an_async_twin(context) -> None:
    async def main() -> list:
        return [await context.info_async(name) for name in ("pva://T:wave", "T:wave")]

    assert asyncio.run(main()) == [context.info("pva://T:wave"), context.info("T:wave")]


def test_subscriptions_deliver_strings_on_request(context) -> None:
    context.put("T:chars", "some text")
    context.put("T:enum", "two")
    names = ["T:enum", "pva://T:enum", "T:chars", "pva://T:chars"]
    updates: dict[str, Reading] = {}
    arrived = threading.Condition()

    def keep(reading: Reading) -> None:
        with arrived:
            updates.setdefault(reading.name, reading)
            arrived.notify_all()

    subscriptions = [context.subscribe(name, keep, as_string=True) for name in names]
    try:
        with arrived:
            assert arrived.wait_for(lambda: len(updates) == len(names), 10)
    finally:
        for subscription in subscriptions:
            subscription.close()
    assert [updates[name].value for name in names] == ["two", "two", "some text", "some text"]
    assert context.get("pva://T:chars", as_string=True) == "some text"
    assert repr(subscriptions[0]).startswith("<Subscription 'T:enum' closed: ")


def test_cli_get(pva_ioc) -> None:
    result = subprocess.run([sys.executable, "-m", "pvflow", "get", "--json", "--form", "ctrl",
                             "pva://T:ai"], capture_output=True, text=True, timeout=60,
                            env={**os.environ, **pva_ioc.env})
    assert result.returncode == 0, result.stderr
    reading = json.loads(result.stdout)
    assert (reading["name"], reading["value"], reading["units"]) == ("pva://T:ai", 1.5, "mm")


def test_reconnects_and_restores_monitors() -> None:
    ioc = SoftIoc('record(longout, "R:count") { field(VAL, "5") field(PINI, "YES") }', pva=True)
    ioc.start()
    try:
        with Context(ioc.env, timeout=10.0) as context:
            assert context.get("pva://R:count") == 5
            values: list[int] = []
            connected: list[bool] = []
            back = threading.Event()

            def on_connection(state: bool) -> None:
                connected.append(state)
                if connected.count(True) == 2:
                    back.set()

            context.subscribe("pva://R:count", lambda r: values.append(r.value),
                              connection_callback=on_connection)
            context.get("pva://R:count")
            ioc.stop()
            ioc.start()
            assert back.wait(20), connected
            assert context.get("pva://R:count") == 5
            context.put("pva://R:count", 6)
            assert context.get("pva://R:count") == 6
            assert connected[:3] == [True, False, True]
    finally:
        ioc.close()


def test_name_server_over_tcp_without_udp_search(pva_ioc) -> None:
    """EPICS_PVA_NAME_SERVERS alone finds the PVs: searches go over TCP to the server."""
    env = {**pva_ioc.env, "EPICS_PVA_ADDR_LIST": "", "EPICS_PVA_AUTO_ADDR_LIST": "NO",
           "EPICS_PVA_NAME_SERVERS": f"127.0.0.1:{pva_ioc.pva_port}"}
    with Context(env, timeout=5.0) as ctx:
        assert ctx.get_many(["pva://T:ai", "pva://T:string"]) == {"pva://T:ai": 1.5,
                                                                  "pva://T:string": "hello"}
    without = {**env, "EPICS_PVA_NAME_SERVERS": ""}
    with Context(without, timeout=1.0) as ctx, pytest.raises(PVTimeoutError):
        ctx.get("pva://T:ai")


def test_a_refused_monitor_reaches_the_callback_as_the_error_naming_the_pv(context) -> None:
    received: queue.Queue[object] = queue.Queue()
    with context.subscribe("pva://T:long", received.put, request="field(no.such.field)"):
        error = received.get(timeout=10)
    assert isinstance(error, PVFlowError) and "monitor of T:long failed" in str(error)



class Updates:
    """A subscription's values, waited on without sleeping."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self.changed = threading.Condition()

    def __call__(self, reading) -> None:
        with self.changed:
            self.values.append(reading.value)
            self.changed.notify_all()

    def wait_last(self, value: float, timeout: float = 30.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.values[-1:] == [value], timeout)


def test_puts_with_and_without_waiting_land_in_the_order_they_were_made(context) -> None:
    # the two kinds go through two PUT operations: a put of one kind must not overtake an
    # earlier one of the other still waiting to be sent, or an older value lands last
    updates = Updates()
    context.put("pva://T:long", -1)
    with context.subscribe("pva://T:long", updates):
        assert updates.wait_last(-1)
        for value in range(500):
            context.put("pva://T:long", value, wait=value % 10 == 9)
        assert context.get("pva://T:long") == 499
        assert updates.wait_last(499)
    assert updates.values == sorted(set(updates.values))  # qsrv may squash, never reorder


def test_waited_puts_from_threads_each_return_once_their_own_put_is_done(context) -> None:
    # a waiting put reads its answer off the socket itself when it comes first: answers of
    # the other threads' puts on the same circuit must not end the wrong wait
    late: list[tuple[str, float, object]] = []
    updates = Updates()

    def write(name: str, offset: float, scale: float) -> None:
        for step in range(300):
            value = offset + step * scale  # T:ao stops at its DRVH of 100
            context.put(name, value)
            seen = context.get(name)
            if seen != value:  # another put's answer ended this one's wait before the write
                late.append((name, value, seen))

    context.put("pva://T:long", -1)
    with context.subscribe("pva://T:long", updates):
        assert updates.wait_last(-1)
        writers = [threading.Thread(target=write, args=args)
                   for args in (("pva://T:ao", 0.5, 0.25), ("pva://T:long", 0, 1),
                                 ("pva://T:ai", 0.25, 1))]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(60)
        assert updates.wait_last(299)
    context.put("pva://T:ai", 1.5)
    assert late == []
    assert updates.values == sorted(set(updates.values))


def test_gets_reading_their_own_answers_keep_monitor_updates_in_order(context) -> None:
    # As over CA: a waiting get reads its GET's answer off the socket itself when it comes
    # first; the monitor updates before and after it on the same circuit stay the I/O thread's
    updates = Updates()
    context.put("pva://T:long", -1)
    with context.subscribe("pva://T:long", updates):
        assert updates.wait_last(-1)
        with reading_meanwhile(context, {"pva://T:ai": 1.5, "pva://T:string": "hello"}) as wrong:
            for value in range(2000):  # in bursts that end with a put that waits
                context.put("pva://T:long", value, wait=value % 100 == 99)
            assert updates.wait_last(1999)
    assert wrong == []
    assert updates.values == sorted(set(updates.values))
