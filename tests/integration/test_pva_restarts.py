"""pvAccess subscriptions through repeated IOC restarts, as Channel Access's are tested: each
time the server comes back the monitor resumes by itself, and while connected no update of a
10 Hz counter is missing. ``PVFLOW_RESTARTS`` sets the number of cycles (default 3; 20 for
the figure in the README)."""

from __future__ import annotations

import os
import threading

from pvflow import Context
from tests.servers import SoftIoc

RESTARTS = int(os.environ.get("PVFLOW_RESTARTS", "3"))
COUNTER = """record(calc, "R:tick") { field(SCAN, ".1 second") field(CALC, "A+1")
    field(INPA, "R:tick NPP") }"""


class Timeline:
    """Connection changes and values in the order the subscription delivered them."""

    def __init__(self) -> None:
        self.events: list[object] = []
        self._changed = threading.Condition()

    def value(self, reading) -> None:
        self._add(int(reading.value))

    def connection(self, connected: bool) -> None:
        self._add(connected)

    def _add(self, event: object) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def wait_for(self, predicate, timeout: float = 30.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.events), timeout)

    def connected_periods(self) -> list[list[int]]:
        periods: list[list[int]] = []
        for event in self.events:
            if event is True:
                periods.append([])
            elif event is not False and periods:
                periods[-1].append(event)
        return periods


def connects(events: list[object]) -> int:
    return sum(event is True for event in events)  # (1 == True: compare by identity)


def values_since_last_connect(events: list[object]) -> int:
    count = 0
    for event in reversed(events):
        if event is True or event is False:
            return count
        count += 1
    return 0


def test_monitor_resumes_after_every_restart_with_no_gap_while_connected() -> None:
    ioc = SoftIoc(COUNTER, pva=True)
    ioc.start()
    timeline = Timeline()
    try:
        with Context(ioc.env, timeout=10.0) as context:
            context.subscribe("pva://R:tick", timeline.value,
                              connection_callback=timeline.connection)
            for cycle in range(RESTARTS):
                assert timeline.wait_for(lambda events: connects(events) == cycle + 1
                                         and values_since_last_connect(events) >= 3), \
                    f"cycle {cycle}: no updates after reconnecting: {timeline.events[-5:]}"
                ioc.stop()
                assert timeline.wait_for(lambda events: events[-1] is False), \
                    f"cycle {cycle}: the loss was never reported"
                ioc.start()
            assert timeline.wait_for(lambda events: connects(events) == RESTARTS + 1
                                     and values_since_last_connect(events) >= 3)
            assert context.get("pva://R:tick") >= 1
    finally:
        ioc.close()
    periods = timeline.connected_periods()
    assert len(periods) == RESTARTS + 1
    for period in periods:
        assert period == list(range(period[0], period[0] + len(period))), period
