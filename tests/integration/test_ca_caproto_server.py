"""The CA client against caproto's server: an independent implementation of the protocol."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from pvflow import Context
from tests.servers import epics_env, free_port

SERVER = textwrap.dedent("""
    import sys
    from caproto.server import PVGroup, pvproperty, run
    from caproto import ChannelType

    class Demo(PVGroup):
        value = pvproperty(value=2.5, units="V", precision=2)
        counter = pvproperty(value=0)
        text = pvproperty(value="caproto", dtype=ChannelType.STRING)
        wave = pvproperty(value=[0.5] * 10, max_length=10)
        mode = pvproperty(value="b", enum_strings=["a", "b", "c"], dtype=ChannelType.ENUM)

    ioc = Demo(prefix="CP:")
    print("READY", flush=True)
    run(ioc.pvdb, interfaces=["127.0.0.1"], log_pv_names=False)
""")


@pytest.fixture(scope="module")
def caproto_ioc():
    port, repeater = free_port(), free_port()
    env = epics_env(port, repeater)
    process = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**os.environ, **env})
    ready = threading.Event()

    def watch() -> None:
        for line in process.stdout:
            if "READY" in line:
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    assert ready.wait(30), "caproto IOC did not start"
    context = Context(env, timeout=10.0)
    context.connect(["CP:value"], timeout=20)  # the server binds after printing READY
    yield context
    context.close()
    process.terminate()
    process.wait(10)


def test_values_and_metadata(caproto_ioc) -> None:
    context = caproto_ioc
    assert context.get("CP:value") == 2.5
    reading = context.get("CP:value", form="ctrl")
    assert (reading.units, reading.precision) == ("V", 2)
    assert context.get("CP:text") == "caproto"
    assert context.get("CP:mode", as_string=True) == "b"
    np.testing.assert_array_equal(context.get("CP:wave"), [0.5] * 10)


def test_put_and_monitor(caproto_ioc) -> None:
    context = caproto_ioc
    seen: list[int] = []
    done = threading.Event()

    def record(reading) -> None:
        seen.append(reading.value)
        if reading.value == 20:
            done.set()

    with context.subscribe("CP:counter", record):
        for value in range(1, 21):
            context.put("CP:counter", value)
        assert done.wait(10)
    assert seen[-20:] == list(range(1, 21))
    context.put("CP:mode", "c")
    assert context.get("CP:mode") == 2
    assert context.get_many(["CP:value", "CP:counter"]) == {"CP:value": 2.5, "CP:counter": 20}
