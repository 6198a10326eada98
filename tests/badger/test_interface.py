"""pvflow.badger.Interface against the C softIoc over Channel Access and pvAccess."""

from __future__ import annotations

import logging
import math
import time
from functools import partial
from typing import Any

import pytest

from pvflow import PVTimeoutError
from pvflow.badger import Interface, ReadbackError, SetValuesError, wait_for_readback
from tests.servers import SoftIoc

PROTOCOLS = ["", "pva://"]


def writes(interface: Interface) -> float:
    """The server-side count of processings of B:COUNTED:SET."""
    count: float = interface.get_values(["B:COUNTED:WRITES"])["B:COUNTED:WRITES"]
    return count


def stuck(timeout: float) -> partial[Any]:
    return partial(wait_for_readback, readback_pv="B:STUCK:RBV", tolerance=0.01,
                   timeout=timeout)


def test_get_values_reads_ca_and_pva_in_one_call(interface: Interface) -> None:
    interface.set_values({"PVFLOW:EXAMPLE:Q1:SET": 0.5})
    values = interface.get_values(["PVFLOW:EXAMPLE:Q1:RBV", "pva://PVFLOW:EXAMPLE:Q1:RBV",
                                   "ca://PVFLOW:EXAMPLE:BEAM:SIZE"])
    assert values["PVFLOW:EXAMPLE:Q1:RBV"] == 0.5
    assert values["pva://PVFLOW:EXAMPLE:Q1:RBV"] == 0.5
    assert type(values["ca://PVFLOW:EXAMPLE:BEAM:SIZE"]) is float  # not a numpy scalar


def test_unreadable_channel_gives_nan_and_a_warning(interface: Interface,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    interface.timeout = 0.5
    with caplog.at_level(logging.WARNING, logger="pvflow.badger"):
        values = interface.get_values(["B:NO:SUCH:PV", "PVFLOW:EXAMPLE:BEAM:SIZE"])
    assert math.isnan(values["B:NO:SUCH:PV"])
    assert not math.isnan(values["PVFLOW:EXAMPLE:BEAM:SIZE"])
    assert "B:NO:SUCH:PV cannot be read" in caplog.text


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_set_values_writes(interface: Interface, protocol: str) -> None:
    before = writes(interface)
    interface.set_values({f"{protocol}B:COUNTED:SET": 1.0})
    # a PVA put is acknowledged before the record processes: wait for the count to follow
    wait_for_readback("B:COUNTED:SET", before + 1, interface.context,
                      readback_pv="B:COUNTED:WRITES", tolerance=0, timeout=5)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_read_only_writes_nothing_and_still_reads(interface: Interface, protocol: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    before = writes(interface)
    interface.read_only = True
    with caplog.at_level(logging.INFO, logger="pvflow.badger"):
        interface.set_values({f"{protocol}B:COUNTED:SET": 2.0})
    assert writes(interface) == before  # reading still works
    # a put to the same channel after the (skipped) one: once it has been counted, any
    # write of the read-only call would have been counted before it
    interface.read_only = False
    interface.set_values({f"{protocol}B:COUNTED:SET": 3.0})
    wait_for_readback("B:COUNTED:SET", before + 1, interface.context,
                      readback_pv="B:COUNTED:WRITES", tolerance=0, timeout=5)
    assert f"read-only: would put 2.0 to {protocol}B:COUNTED:SET" in caplog.text


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_put_timing_out_every_time_raises_naming_pv_and_value(
        interface: Interface, protocol: str, caplog: pytest.LogCaptureFixture) -> None:
    interface.timeout = 0.3
    name = f"{protocol}B:NOBODY:SERVES:THIS"
    with caplog.at_level(logging.WARNING, logger="pvflow.badger"), \
            pytest.raises(PVTimeoutError) as raised:
        interface.set_values({name: 1.25})
    assert f"put of 1.25 to {name} timed out 2 time(s)" in str(raised.value)
    assert raised.value.pv == name
    assert "attempt 1 of 2" in caplog.text


def test_put_timing_out_once_passes_on_retry(interface: Interface,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """The first put-callback waits for the 5 s output delay; the retry, on a fresh channel,
    completes without waiting for it."""
    interface.timeout = 1.0
    assert interface.context.get("B:SLOW:DELAY.PACT") == 0  # no output delay running yet
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="pvflow.badger"):
        interface.set_values({"B:SLOW:SET": 4.0})
    took = time.monotonic() - started
    assert "put of 4.0 to B:SLOW:SET timed out (attempt 1 of 2)" in caplog.text, \
        f"the first put-callback completed after {took:.2f} s"


def test_put_attempts_and_delay_are_configurable(interface: Interface,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    interface.timeout, interface.put_attempts, interface.retry_delay = 0.2, 3, 0.0
    with caplog.at_level(logging.WARNING, logger="pvflow.badger"), \
            pytest.raises(PVTimeoutError, match="timed out 3 time"):
        interface.set_values({"B:NOBODY:SERVES:THIS": 1.0})
    assert "attempt 2 of 3" in caplog.text


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_validation_passed_by_the_environment(interface: Interface, protocol: str) -> None:
    check = partial(wait_for_readback, readback_pv=f"{protocol}PVFLOW:EXAMPLE:Q2:RBV",
                    tolerance=1e-6, timeout=5)
    result = interface.set_values({f"{protocol}PVFLOW:EXAMPLE:Q2:SET": -0.125},
                                  configs={f"{protocol}PVFLOW:EXAMPLE:Q2:SET": check})
    assert result == {f"{protocol}PVFLOW:EXAMPLE:Q2:SET": -0.125}


def test_validation_field_fails_naming_set_pv_readback_and_expected(machine: SoftIoc) -> None:
    interface = Interface(epics_variables=machine.env, validations={"B:STUCK1:SET": stuck(0.5)})
    try:
        with pytest.raises(ReadbackError) as raised:
            interface.set_values({"B:STUCK1:SET": 0.25})
    finally:
        interface.reset_interface()
    message = str(raised.value)
    assert "B:STUCK1:SET was set to 0.25" in message
    assert "readback B:STUCK:RBV is -5.0" in message
    assert "expected 0.25" in message


def test_parallel_runs_every_channel_and_collects_every_failure(interface: Interface) -> None:
    interface.parallel = True
    before = writes(interface)
    with pytest.raises(SetValuesError) as raised:
        interface.set_values({"B:STUCK1:SET": 1.0, "B:STUCK2:SET": 2.0, "B:COUNTED:SET": 3.0},
                             configs={"B:STUCK1:SET": stuck(0.5), "B:STUCK2:SET": stuck(0.5)})
    assert set(raised.value.errors) == {"B:STUCK1:SET", "B:STUCK2:SET"}
    assert all(isinstance(error, ReadbackError) for error in raised.value.errors.values())
    assert "B:STUCK1:SET was set to 1.0" in str(raised.value)
    assert "B:STUCK2:SET was set to 2.0" in str(raised.value)
    assert writes(interface) == before + 1  # the channel that could be set was set


def test_parallel_puts_and_validations_overlap(interface: Interface) -> None:
    """Each channel's validation waits for the *other* channel's put: only when both run at
    the same time can both pass; in order, the first one's validation must fail."""
    crossed = {"B:PAIR:A": partial(wait_for_readback, readback_pv="B:PAIR:B", tolerance=0,
                                   timeout=5),
               "B:PAIR:B": partial(wait_for_readback, readback_pv="B:PAIR:A", tolerance=0,
                                   timeout=5)}
    interface.set_values({"B:PAIR:A": 0.0, "B:PAIR:B": 0.0})
    interface.parallel = True
    assert interface.set_values({"B:PAIR:A": 1.0, "B:PAIR:B": 1.0}, configs=crossed) == \
        {"B:PAIR:A": 1.0, "B:PAIR:B": 1.0}
    interface.parallel = False
    crossed["B:PAIR:A"] = partial(crossed["B:PAIR:A"], timeout=0.5)
    with pytest.raises(ReadbackError, match="B:PAIR:A was set to 2.0"):
        interface.set_values({"B:PAIR:A": 2.0, "B:PAIR:B": 2.0}, configs=crossed)
    assert interface.get_values(["B:PAIR:B"]) == {"B:PAIR:B": 1.0}  # untouched after failure


def test_get_info_describes_each_channel(interface: Interface) -> None:
    interface.timeout = 0.5
    info = interface.get_info(["PVFLOW:EXAMPLE:Q1:SET", "pva://PVFLOW:EXAMPLE:BEAM:SIZE",
                               "B:NO:SUCH:PV"])
    assert info["interface"]["name"] == "pvflow"
    ca, pva, missing = info["vars"]
    assert (ca["protocol"], ca["connected"], ca["access"]) == ("CA", "yes", "read/write")
    assert (pva["protocol"], pva["connected"]) == ("PVA", "yes")
    assert missing["connected"] == "no" and "B:NO:SUCH:PV" in missing["reason"]


def test_reset_interface_starts_a_fresh_context(interface: Interface) -> None:
    first = interface.context
    interface.get_values(["PVFLOW:EXAMPLE:BEAM:SIZE"])
    interface.reset_interface()
    assert interface.context is not first
    assert not math.isnan(interface.get_values(["PVFLOW:EXAMPLE:BEAM:SIZE"])
                          ["PVFLOW:EXAMPLE:BEAM:SIZE"])


def test_badger_sees_the_parameters_in_the_json_schema() -> None:
    """Badger's loader lists an interface's parameters from its JSON schema."""
    properties = Interface.model_json_schema()["properties"]
    assert properties["read_only"]["default"] is False
    assert properties["put_attempts"]["default"] == 2
    assert properties["retry_delay"]["default"] == 1.0
    assert "validations" in properties
