"""A lying pvAccess server next to a real pvxs softIoc in one Context: each lie costs at most
the lying channel or its circuit, errors name the PV, the real channel keeps working."""

from __future__ import annotations

import random
import struct

import pytest

from pvflow import Context, DisconnectedError, PVTimeoutError
from pvflow.pva.protocol import Command
from tests.hostile.conftest import peak_allocation
from tests.hostile.pva_server import HEADER, HostilePVAServer, double_get, message
from tests.servers import SoftIoc


def joint_context(ioc: SoftIoc, *servers: HostilePVAServer) -> Context:
    env = dict(ioc.env)
    env["EPICS_PVA_ADDR_LIST"] = " ".join([env["EPICS_PVA_ADDR_LIST"],
                                           *(server.address for server in servers)])
    return Context(env, timeout=5.0)


def test_the_lying_server_serves_when_it_does_not_lie(pva_softioc) -> None:
    with HostilePVAServer(["EVIL:honest"], {Command.GET: double_get(4.5)}) as evil, \
            joint_context(pva_softioc, evil) as ctx:
        assert ctx.get("pva://EVIL:honest") == 4.5 and ctx.get("pva://T:ai") == 1.5


def test_garbage_closes_that_circuit_only_and_it_reconnects(pva_softioc) -> None:
    answers = iter([random.Random(3).randbytes(200)])
    honest = double_get(2.0)

    def get(request):  # the first EXEC is answered with garbage, the rest properly
        _, _, sub = request.ids
        return honest(request) if sub & 0x08 else next(answers, None) or honest(request)

    with HostilePVAServer(["EVIL:noise"], {Command.GET: get}) as evil, \
            joint_context(pva_softioc, evil) as ctx:
        with pytest.raises(DisconnectedError) as info:
            ctx.get("pva://EVIL:noise")
        assert info.value.pv == "EVIL:noise"
        assert ctx.get("pva://T:ai") == 1.5
        assert ctx.get("pva://EVIL:noise") == 2.0 and evil.accepted == 2


def test_header_claiming_a_gigabyte_takes_no_gigabyte(pva_softioc) -> None:
    def lie(request):
        _, ioid, sub = request.ids
        if sub & 0x08:
            return double_get()(request)
        return HEADER.pack(0xCA, 2, 0x40, Command.GET, (1 << 30) - 8) + struct.pack(
            "<IB", ioid, sub)

    with HostilePVAServer(["EVIL:huge"], {Command.GET: lie}) as evil, \
            joint_context(pva_softioc, evil) as ctx:
        ctx.connect(["pva://EVIL:huge"])
        peak, error = peak_allocation(lambda: ctx.get("pva://EVIL:huge", timeout=0.5))
        assert isinstance(error, PVTimeoutError) and "EVIL:huge" in str(error)
        assert peak < 64 * 1024 * 1024, f"{peak} bytes taken on a header's word"
        assert ctx.get("pva://T:ai") == 1.5 and evil.accepted == 1


def test_replies_to_requests_never_made_are_ignored(pva_softioc) -> None:
    unasked = b"".join([
        message(Command.GET, struct.pack("<IB", 999_999, 0) + b"\xff"),
        message(Command.CREATE_CHANNEL, struct.pack("<II", 888_888, 1) + b"\xff"),
        message(Command.DESTROY_CHANNEL, struct.pack("<II", 777_777, 1)),
        message(Command.MONITOR, struct.pack("<IB", 666_666, 0)),
        message(Command.MESSAGE, struct.pack("<IB", 555_555, 1) + b"\x03hey"),
    ])
    with HostilePVAServer(["EVIL:chatty"]) as evil, joint_context(pva_softioc, evil) as ctx:
        assert ctx.get("pva://EVIL:chatty") == 1.0
        evil.send_to_clients(unasked * 500)
        assert ctx.get("pva://EVIL:chatty") == 1.0 and ctx.get("pva://T:ai") == 1.5
        assert evil.accepted == 1


def test_a_silent_server_times_out_naming_the_pv(pva_softioc) -> None:
    def silent(request):
        _, _, sub = request.ids
        return double_get()(request) if sub & 0x08 else b""

    with HostilePVAServer(["EVIL:slow"], {Command.GET: silent}) as evil, \
            joint_context(pva_softioc, evil) as ctx:
        with pytest.raises(PVTimeoutError, match="pva://EVIL:slow") as info:
            ctx.get("pva://EVIL:slow", timeout=0.5)
        assert info.value.pv == "EVIL:slow"
        assert ctx.get("pva://T:ai") == 1.5


def test_a_refused_channel_is_not_searched_again_until_asked(pva_softioc) -> None:
    def refuse(request):
        (cid,) = struct.unpack_from("<I", request.payload, 2)
        return message(Command.CREATE_CHANNEL, struct.pack("<II", cid, 0)
                       + b"\x02\x0cno such name\x00")

    with HostilePVAServer(["EVIL:refused"], {Command.CREATE_CHANNEL: refuse}) as evil, \
            joint_context(pva_softioc, evil) as ctx:
        with pytest.raises(PVTimeoutError, match="EVIL:refused.*no such name") as info:
            ctx.get("pva://EVIL:refused", timeout=0.5)
        assert info.value.pv == "EVIL:refused"
        assert not evil.wait_for(lambda s: s.received[Command.CREATE_CHANNEL] > 1
                                 or s.searches["EVIL:refused"] > 1, timeout=1.5)
        with pytest.raises(PVTimeoutError, match="no such name"):  # asked again: once more
            ctx.get("pva://EVIL:refused", timeout=1.0)
        assert evil.received[Command.CREATE_CHANNEL] == 2
        assert ctx.get("pva://T:ai") == 1.5
