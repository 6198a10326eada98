"""Correctness at scale against real softIocs: tens of thousands of names each read once, the
search sending each name about once when servers answer, and a restart of an IOC holding
thousands of monitored channels with every subscription resumed. No timing is asserted: the
speed is ``benchmarks/scale.py``'s business."""

from __future__ import annotations

import threading

import pytest

from pvflow import Context
from tests.servers import SoftIoc


def records(names: list[str], first: int = 0, step: int = 1) -> str:
    return "".join(f'record(ai, "{names[index]}") {{ field(VAL, "{index}") field(PINI, "YES") }}\n'
                   for index in range(first, len(names), step))


def spread_env(iocs: list[SoftIoc]) -> dict[str, str]:
    env = dict(iocs[0].env)
    env["EPICS_CA_ADDR_LIST"] = " ".join(f"127.0.0.1:{ioc.ca_port}" for ioc in iocs)
    return env


@pytest.fixture(scope="module")
def twenty_thousand():
    names = [f"S:{index:05d}" for index in range(20_000)]
    ioc = SoftIoc(records(names), startup_timeout=120.0)
    ioc.start()
    yield ioc, names
    ioc.close()


def test_twenty_thousand_names_are_each_read_once(twenty_thousand) -> None:
    ioc, names = twenty_thousand
    with Context(ioc.env, timeout=60.0) as context:
        values = context.get_many(names)
        stats = context.stats()
    assert [values[name] for name in names] == [float(index) for index in range(len(names))]
    # every name answered: a lost reply may cost a second search, a storm would cost many
    assert len(names) <= stats["searches_sent"] < 1.2 * len(names)
    assert stats["searching"] == 0


def test_names_interleaved_over_five_iocs_are_each_read_once() -> None:
    names = [f"F:{index:05d}" for index in range(10_000)]
    iocs = [SoftIoc(records(names, first, 5), startup_timeout=120.0) for first in range(5)]
    try:
        for ioc in iocs:
            ioc.start(wait=False)
        for ioc in iocs:
            ioc.wait_ready()
        with Context(spread_env(iocs), timeout=60.0) as context:
            values = context.get_many(names)
            stats = context.stats()
        assert [values[name] for name in names] == [float(index) for index in range(len(names))]
        assert stats["circuits"] == 5
        assert len(names) <= stats["searches_sent"] < 1.2 * len(names)
    finally:
        for ioc in iocs:
            ioc.close()


def test_a_thousand_pva_names_read_again_while_connected_are_each_read_once() -> None:
    """The second read goes from the caller's thread in many writes (the server starts on the
    first while the rest are made): every value still lands in its own name's slot."""
    names = [f"P:{index:04d}" for index in range(1_000)]
    ioc = SoftIoc(records(names), pva=True, startup_timeout=120.0)
    ioc.start()
    try:
        prefixed = [f"pva://{name}" for name in names]
        with Context(ioc.env, timeout=60.0) as context:
            first = context.get_many(prefixed)
            context.put(names[7], -7.0)
            again = context.get_many(prefixed)
        expected = [float(index) for index in range(len(names))]
        assert [first[name] for name in prefixed] == expected
        assert [again[name] for name in prefixed] == [-7.0 if index == 7 else value
                                                      for index, value in enumerate(expected)]
    finally:
        ioc.close()


class Latest:
    """The last value and connection state of every subscription, waited on without sleeps."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self.connected: dict[str, bool] = {}
        self.changed = threading.Condition()

    def callbacks(self, name: str):
        def value(reading) -> None:
            with self.changed:
                self.values[name] = reading.value
                self.changed.notify_all()

        def connection(connected: bool) -> None:
            with self.changed:
                self.connected[name] = connected
                self.changed.notify_all()

        return value, connection

    def wait_for(self, condition, timeout: float = 60.0) -> bool:
        with self.changed:
            return self.changed.wait_for(condition, timeout)


def test_restart_of_an_ioc_with_two_thousand_monitored_channels() -> None:
    names = [f"M:{index:04d}" for index in range(2_000)]
    ioc = SoftIoc(records(names), startup_timeout=60.0)
    ioc.start()
    try:
        with Context(ioc.env, timeout=30.0) as context:
            latest = Latest()
            subscriptions = []
            for name in names:
                value, connection = latest.callbacks(name)
                subscriptions.append(context.subscribe(name, value,
                                                       connection_callback=connection))
            assert latest.wait_for(lambda: len(latest.values) == len(names))
            ioc.stop()
            assert latest.wait_for(lambda: not any(latest.connected.values()))
            ioc.start()  # same ports; the records start again from their PINI values
            assert latest.wait_for(lambda: all(latest.connected.values())), (
                f"{sum(not up for up in latest.connected.values())} of {len(names)} channels "
                f"not back; {context.stats()}; the IOC said (did it get its ports back?):\n"
                + "\n".join(ioc.output.splitlines()[-15:]))
            for index, name in enumerate(names):
                context.put(name, -index, wait=False)
            assert latest.wait_for(lambda: all(latest.values[name] == -index
                                               for index, name in enumerate(names)))
            assert context.stats()["searching"] == 0
            for subscription in subscriptions:
                subscription.close()
    finally:
        ioc.close()
