"""pvAccess puts follow Channel Access's value rules: a value the PV's type cannot hold is a
ValueError before anything of it is sent, never a malformed-message error blamed on the server,
and the shared circuit (with everybody else's subscriptions) stays up."""

from __future__ import annotations

import queue

import pytest


@pytest.mark.parametrize("first_put", [True, False])
def test_out_of_range_integer_is_refused_and_the_circuit_stays(pva_context,
                                                               first_put) -> None:
    connections: queue.Queue[bool] = queue.Queue()
    with pva_context.subscribe("pva://T:ai", lambda reading: None,
                           connection_callback=connections.put):
        assert connections.get(timeout=5) is True
        if not first_put:
            pva_context.put("pva://T:long", 7)  # the put operation and its type are known now
        with pytest.raises(ValueError, match=r"pva://T:long.*outside"):
            pva_context.put("pva://T:long", 2**70, timeout=2.0)
        pva_context.put("pva://T:long", 42)
        assert pva_context.get("pva://T:long") == 42
        assert connections.empty(), "the shared circuit was closed"


@pytest.mark.parametrize("value, reason", [
    (None, "None is not a value"),
    (float("nan"), "not finite"),
    ("abc", "not a number"),
    ([1, 2], "scalar"),
])
def test_values_channel_access_refuses_are_refused(pva_context, value, reason) -> None:
    with pytest.raises(ValueError, match=reason):
        pva_context.put("pva://T:long", value)
    assert pva_context.get("pva://T:long") == 42


def test_none_into_a_double_is_refused(pva_context) -> None:
    with pytest.raises(ValueError, match="None"):
        pva_context.put("pva://T:ao", None)
    with pytest.raises(ValueError, match="None"):
        pva_context.put("pva://T:ao", None, wait=False)
