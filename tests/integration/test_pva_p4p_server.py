"""The PVA client against a p4p server: NTTable, NTNDArray (raw, lz4, bslz4), structures, RPC."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from pvflow import Context
from pvflow.demo.processes import ServerProcess
from pvflow.pva.nt import NDImage, table_as_structured_array
from tests.servers import free_port

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def p4p_env():
    port, broadcast_port = free_port(), free_port()
    server = ServerProcess([sys.executable, "-m", "tests.integration.p4p_server", str(port),
                            str(broadcast_port)], {}, "ready", name="p4p server",
                           cwd=str(REPOSITORY))
    server.start()
    yield {"EPICS_PVA_ADDR_LIST": f"127.0.0.1:{broadcast_port}",
           "EPICS_PVA_AUTO_ADDR_LIST": "NO", "EPICS_PVA_BROADCAST_PORT": str(broadcast_port),
           "EPICS_CA_AUTO_ADDR_LIST": "NO", "EPICS_CA_ADDR_LIST": ""}
    server.stop()


@pytest.fixture
def context(p4p_env):
    with Context(p4p_env, timeout=5.0) as ctx:
        yield ctx


def test_nttable_as_columns_and_structured_array(context) -> None:
    columns = context.get("pva://P:table")
    assert list(columns) == ["x", "name", "count"]
    np.testing.assert_array_equal(columns["x"], [1.5, 2.5])
    assert columns["name"] == ["a", "b"]
    table = table_as_structured_array(columns)
    assert table["count"].tolist() == [1, 2] and table.dtype.names == ("x", "name", "count")


def test_nttable_put_columns(context) -> None:
    context.put("pva://P:table", {"x": [9.0], "name": ["z"], "count": [7]})
    assert context.get("pva://P:table")["name"] == ["z"]


@pytest.mark.parametrize("name", ["P:image", "P:image:lz4", "P:image:bslz4"])
def test_ntndarray_image(context, name) -> None:
    image = context.get(f"pva://{name}")
    assert isinstance(image, NDImage) and image.shape == (480, 640)
    assert image.dtype == np.uint16
    np.testing.assert_array_equal(image, (np.arange(640 * 480) % 4093).reshape(480, 640))
    assert image.attributes == {"Exposure": 0.25, "Camera": "sim", "ColorMode": 0}  # p4p adds it
    assert [dimension["size"] for dimension in image.dimensions] == [640, 480]
    reading = context.get(f"pva://{name}", form="time")
    assert reading.value.shape == (480, 640) and reading.timestamp == 1_700_000_000


def test_plain_structure_and_scalar(context) -> None:
    assert context.get("pva://P:struct") == {"a": 3, "b": {"c": "deep"}}
    context.put("pva://P:struct", {"b": {"c": "changed"}})
    assert context.get("pva://P:struct")["b"]["c"] == "changed"
    assert context.get("pva://P:scalar") == 4.5


def test_rpc(context) -> None:
    result = context.rpc("pva://P:add", {"a": 1.25, "b": 2.0})
    assert result["value"] == 3.25


def test_monitor_of_images(context) -> None:
    import threading
    got: list = []
    done = threading.Event()

    def on_image(reading) -> None:
        got.append(reading)
        done.set()

    with context.subscribe("pva://P:image:lz4", on_image):
        assert done.wait(10)
    assert got[0].value.shape == (480, 640)
