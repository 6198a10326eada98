"""A p4p (pvxs) server for the PVA tests: ``python -m tests.integration.p4p_server PORT BPORT``.

Serves an NTTable, NTNDArray images (raw, lz4, bslz4), a plain structure and an RPC adder on
127.0.0.1 only, prints "ready", and runs until its stdin closes.
"""

from __future__ import annotations

import sys

import numpy as np
from p4p.nt import NTNDArray, NTScalar, NTTable
from p4p.server import Server
from p4p.server.thread import SharedPV
from p4p.wrapper import Type, Value

from pvflow.compression import compress

IMAGE = (np.arange(640 * 480) % 4093).astype(np.uint16).reshape(480, 640)


def image_value(codec: str) -> Value:
    value = NTNDArray().wrap(IMAGE, attrib={"Exposure": 0.25, "Camera": "sim"})
    value["timeStamp.secondsPastEpoch"] = 1_700_000_000
    if codec:
        packed = np.frombuffer(compress(codec, IMAGE), np.uint8)
        value["value"] = ("ubyteValue", packed)
        value["codec.name"] = codec
        value["codec.parameters"] = 6  # pvData ScalarType pvUShort, as NDPluginCodec writes
        value["compressedSize"] = packed.size
        value["uncompressedSize"] = IMAGE.nbytes
    return value


class Writable:
    def put(self, pv: SharedPV, op: object) -> None:
        pv.post(op.value())  # type: ignore[attr-defined]
        op.done()  # type: ignore[attr-defined]


class Adder:
    def rpc(self, pv: SharedPV, op: object) -> None:
        argument = op.value()  # type: ignore[attr-defined]
        op.done(NTScalar("d").wrap(argument["a"] + argument["b"]))  # type: ignore[attr-defined]


def main() -> None:
    port, broadcast_port = sys.argv[1], sys.argv[2]
    table = NTTable([("x", "d"), ("name", "s"), ("count", "i")])
    providers = {
        "P:table": SharedPV(nt=table, initial=table.wrap(
            [{"x": 1.5, "name": "a", "count": 1}, {"x": 2.5, "name": "b", "count": 2}]),
            handler=Writable()),
        "P:image": SharedPV(initial=image_value("")),
        "P:image:lz4": SharedPV(initial=image_value("lz4")),
        "P:image:bslz4": SharedPV(initial=image_value("bslz4")),
        "P:struct": SharedPV(initial=Value(Type([("a", "i"), ("b", ("S", None, [("c", "s")]))]),
                                           {"a": 3, "b": {"c": "deep"}}), handler=Writable()),
        "P:scalar": SharedPV(nt=NTScalar("d", display=True), initial=4.5),
        "P:add": SharedPV(nt=NTScalar("d"), initial=0.0, handler=Adder()),
    }
    conf = {"EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1", "EPICS_PVAS_SERVER_PORT": port,
            "EPICS_PVAS_BROADCAST_PORT": broadcast_port, "EPICS_PVAS_BEACON_ADDR_LIST": "",
            "EPICS_PVAS_AUTO_BEACON_ADDR_LIST": "NO"}
    with Server(providers=[providers], conf=conf, useenv=False):
        print("ready", flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
