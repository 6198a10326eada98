"""The CA client against the C softIoc: types, forms, puts, bulk reads, errors."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from pvflow import AccessDeniedError, PutError, PVTimeoutError, Reading


def test_scalar_types(context) -> None:
    assert context.get("T:ai") == 1.5
    assert context.get("T:long") == 42
    assert context.get("T:string") == "hello"
    assert context.get("T:enum") == 0
    assert context.get("T:enum", as_string=True) == "zero"


def test_time_form_has_timestamp_and_alarm(context) -> None:
    reading = context.get("T:ai", form="time")
    assert isinstance(reading, Reading)
    assert reading.value == 1.5 and reading.timestamp > 1.6e9
    assert (reading.severity, reading.status) == (0, 0)


def test_ctrl_form_has_metadata_and_timestamp(context) -> None:
    reading = context.get("T:ai", form="ctrl")
    assert (reading.units, reading.precision) == ("mm", 3)
    assert reading.display_limits == (-10, 10)
    assert reading.alarm_limits == (-8, 8) and reading.warning_limits == (-6, 6)
    assert reading.timestamp > 1.6e9
    assert context.get("T:enum", form="ctrl").enum_strings == ("zero", "one", "two")


def test_alarm_severity_follows_the_value(context) -> None:
    context.put("T:ai", 9.0)
    try:
        reading = context.get("T:ai", form="time")
        assert reading.severity == 2  # MAJOR: above HIHI, which the record set, not us
    finally:
        context.put("T:ai", 1.5)


@pytest.mark.parametrize("name, values, dtype", [
    ("T:wave", np.linspace(0, 1, 300), np.float64),
    ("T:shorts", np.arange(-5, 5), np.int16),
    ("T:floats", np.arange(16) / 4, np.float32),
    ("T:longs", np.arange(16) * 100_000, np.int32),
])
def test_arrays_round_trip_with_dynamic_length(context, name, values, dtype) -> None:
    context.put(name, values)
    got = context.get(name)
    assert got.dtype == dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, values.astype(dtype))


def test_char_waveform_as_text(context) -> None:
    context.put("T:chars", "spectrum.h5")
    assert context.get("T:chars", as_string=True) == "spectrum.h5"
    assert bytes(context.get("T:chars")) == b"spectrum.h5\0"


def test_string_waveform(context) -> None:
    context.put("T:strings", ["a", "bb", "ccc"])
    assert context.get("T:strings") == ["a", "bb", "ccc"]


def test_big_waveform_over_the_default_array_limit(context) -> None:
    values = np.random.default_rng(1).random(2_000_000)
    context.put("T:big", values)
    np.testing.assert_array_equal(context.get("T:big"), values)


def test_enum_put_by_string_and_index(context) -> None:
    context.put("T:enum", "two")
    assert context.get("T:enum") == 2
    context.put("T:enum", 1)
    assert context.get("T:enum", as_string=True) == "one"


def test_put_callback_waits_for_completion(context) -> None:
    # calcout with ODLY holds the put-callback until its delayed output fires
    context.put("T:slow.A", 3.0)
    context.put("T:slow.PROC", 1, wait=True)
    assert context.get("T:slow.PACT") == 0


def test_put_with_callback_returns_at_once(context) -> None:
    done = threading.Event()
    outcome = []
    context.put("T:slow.PROC", 1, callback=lambda error: (outcome.append(error), done.set()))
    assert context.get("T:slow.PACT") == 1  # still processing: the put did not wait
    assert done.wait(5)
    assert outcome == [None]


def test_get_many_returns_every_name(context) -> None:
    names = ["T:ai", "T:long", "T:string", "T:missing"]
    results = context.get_many(names, timeout=1.0)
    assert list(results) == names
    assert results["T:ai"] == 1.5 and results["T:long"] == 42
    assert isinstance(results["T:missing"], PVTimeoutError)
    assert "T:missing" in str(results["T:missing"])


def test_get_many_time_form(context) -> None:
    results = context.get_many(["T:ai", "T:ao"], form="time")
    assert all(isinstance(value, Reading) for value in results.values())


def test_missing_pv_times_out_naming_it(context) -> None:
    with pytest.raises(PVTimeoutError, match="T:nope.*did not connect"):
        context.get("T:nope", timeout=0.3)


def test_connect_lists_the_missing(context) -> None:
    with pytest.raises(PVTimeoutError, match="T:gone1.*T:gone2"):
        context.connect(["T:ai", "T:gone1", "T:gone2"], timeout=0.3)


def test_put_to_read_only_is_access_denied(context) -> None:
    context.connect(["T:readonly"])
    assert context.info("T:readonly").write_access is False
    with pytest.raises(AccessDeniedError, match="T:readonly"):
        context.put("T:readonly", 1.0)
    assert context.get("T:readonly") == 3.0


def test_unconvertible_value_is_value_error_and_nothing_changes(context) -> None:
    before = context.get("T:long")
    with pytest.raises(ValueError, match="T:long.*outside"):
        context.put("T:long", 2**40)
    with pytest.raises(ValueError, match="T:enum.*not one of"):
        context.put("T:enum", "four")
    assert context.get("T:long") == before


def test_record_refusing_a_put_is_put_error(context) -> None:
    context.put("T:ao.DISP", 1)
    try:
        with pytest.raises(PutError, match="T:ao"):
            context.put("T:ao", 5.0)
    finally:
        context.put("T:ao.DISP", 0)


def test_info(context) -> None:
    info = context.info("T:wave")
    assert (info.native_type, info.element_count, info.read_access) == ("DOUBLE", 1000, True)


def test_async_twins(context) -> None:
    async def run() -> tuple:
        await context.connect_async(["T:ai", "T:long"])
        await context.put_async("T:long", 7)
        return (await context.get_async("T:long"),
                await context.get_many_async(["T:ai", "T:long"]),
                await context.get_async("T:ai", form="ctrl"))

    value, many, reading = asyncio.run(run())
    assert value == 7 and many == {"T:ai": 1.5, "T:long": 7} and reading.units == "mm"


def test_async_timeout_names_the_pv(context) -> None:
    async def run() -> None:
        await context.get_async("T:absent", timeout=0.2)

    with pytest.raises(PVTimeoutError, match="T:absent"):
        asyncio.run(run())


def test_many_threads_at_once(context) -> None:
    names = ["T:ai", "T:long", "T:string", "T:wave"]
    errors: list[BaseException] = []
    results: list[object] = []

    def work() -> None:
        try:
            for _ in range(200):
                results.append(context.get(names[len(results) % 4]))
                results.append(context.get_many(names))
        except BaseException as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert len(results) == 8 * 400


def test_watch_reports_connection_and_access_rights(context) -> None:
    events: list[tuple] = []
    done = threading.Event()

    def on_access(read: bool, write: bool) -> None:
        events.append(("access", read, write))
        done.set()

    watch = context.watch("T:readonly", lambda up: events.append(("connected", up)),
                          access_callback=on_access)
    assert done.wait(5)
    watch.close()
    assert events == [("connected", True), ("access", True, False)]


def test_name_server_over_tcp_without_udp_search(softioc) -> None:
    from pvflow import Context

    env = {**softioc.env, "EPICS_CA_ADDR_LIST": "", "EPICS_CA_AUTO_ADDR_LIST": "NO",
           "EPICS_CA_NAME_SERVERS": f"127.0.0.1:{softioc.ca_port}"}
    with Context(env, timeout=5.0) as context:
        assert context.get_many(["T:ai", "T:string"]) == {"T:ai": 1.5, "T:string": "hello"}


def test_array_above_our_limit_fails_that_get_only(softioc) -> None:
    from pvflow import Context, PVFlowError

    with Context({**softioc.env, "EPICS_CA_MAX_ARRAY_BYTES": "100000"}) as small:
        small.connect(["T:ai", "T:big"])
        small.put("T:big", np.arange(50_000.0))
        with pytest.raises(PVFlowError, match="T:big.*EPICS_CA_MAX_ARRAY_BYTES"):
            small.get("T:big")
        assert small.get("T:ai") == 1.5  # same circuit, still up
        assert small.stats()["circuits"] == 1


def test_subscription_delivered_on_an_asyncio_loop(context) -> None:
    async def run() -> tuple[list[int], set[int]]:
        loop = asyncio.get_running_loop()
        values: list[int] = []
        threads: set[int] = set()
        done = asyncio.Event()

        def on_update(reading) -> None:
            values.append(reading.value)
            threads.add(threading.get_ident())
            if reading.value == 30:
                done.set()  # safe: we are on the loop's thread

        subscription = context.subscribe("T:long", on_update, loop=loop)
        for value in range(31):
            await context.put_async("T:long", value)
        await asyncio.wait_for(done.wait(), 10)
        subscription.close()
        return values, threads

    values, threads = asyncio.run(run())
    assert values[-31:] == list(range(31))
    assert threads == {threading.get_ident()}


def test_bulk_ctrl_reads_join_metadata_and_timestamp(context) -> None:
    names = ["T:ai", "T:enum", "T:wave", "T:string", "T:missing"]
    results = context.get_many(names, form="ctrl", timeout=1.0)
    single = {name: context.get(name, form="ctrl") for name in names[:4]}
    for name in names[:4]:
        assert results[name].units == single[name].units
        assert results[name].timestamp == single[name].timestamp
        assert results[name].enum_strings == single[name].enum_strings
    assert results["T:ai"].units == "mm" and results["T:ai"].timestamp > 1.6e9
    assert isinstance(results["T:missing"], PVTimeoutError)


def test_monitor_of_an_empty_waveform_delivers_the_empty_array(softioc) -> None:
    from pvflow import Context

    updates: list[np.ndarray] = []
    arrived = threading.Event()
    with Context(softioc.env) as fresh:  # T:empty is never written: NORD stays 0
        with fresh.subscribe("T:empty", lambda value: (updates.append(value), arrived.set()),
                             form="value"):
            assert arrived.wait(5)
    assert updates[0].size == 0 and updates[0].dtype == np.float64
