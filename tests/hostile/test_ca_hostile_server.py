"""A lying CA server next to a real softIoc in one Context: every lie costs at most the lying
channel or its circuit, errors name the PV and the reason, and the real channel keeps working."""

from __future__ import annotations

import random
import struct

import pytest

from pvflow import Context, DisconnectedError, PVTimeoutError, RemoteProtocolError
from pvflow.ca.protocol import Command, header
from tests.hostile.ca_server import HostileCAServer, created
from tests.hostile.conftest import joint_env, peak_allocation

CREATE = Command.CREATE_CHAN


def test_bad_native_type_fails_the_channel_naming_the_reason_without_a_loop(softioc) -> None:
    with HostileCAServer(["EVIL:type"], {CREATE: created(native=999)}) as evil, \
            Context(joint_env(softioc, evil)) as ctx:
        with pytest.raises(PVTimeoutError, match=r"EVIL:type.*native type 999") as info:
            ctx.get("EVIL:type", timeout=0.5)
        assert info.value.pv == "EVIL:type"
        assert ctx.get("T:ai") == 1.5
        assert evil.received[CREATE] == 1 and evil.accepted == 1
        # nobody asks for it any more: no search, no reconnect, no new CREATE_CHAN
        assert not evil.wait_for(lambda s: s.received[CREATE] > 1 or s.accepted > 1
                                 or s.searches["EVIL:type"] > 1, timeout=1.5)
        # asked again: searched once more, after its back-off, and refused once more
        with pytest.raises(PVTimeoutError, match="native type 999"):
            ctx.get("EVIL:type", timeout=1.0)  # its next back-off is 2 s
        assert evil.received[CREATE] == 2
        assert ctx.get("T:ai") == 1.5


def test_garbage_closes_that_circuit_only_and_it_reconnects(softioc) -> None:
    garbage = random.Random(7).randbytes(200)
    sent = {"done": False}

    def read(request):  # the first read is answered with garbage, later ones properly
        if sent["done"]:
            return header(Command.READ_NOTIFY, 8, 6, 1, 1, request.p2) + struct.pack(">d", 2.0)
        sent["done"] = True
        return garbage

    with HostileCAServer(["EVIL:noise"], {Command.READ_NOTIFY: read}) as evil, \
            Context(joint_env(softioc, evil)) as ctx:
        ctx.connect(["T:ai", "EVIL:noise"])
        with pytest.raises(DisconnectedError) as info:
            ctx.get("EVIL:noise", timeout=5.0)
        assert info.value.pv == "EVIL:noise"
        assert ctx.get("T:ai") == 1.5
        assert ctx.get("EVIL:noise", timeout=5.0) == 2.0  # a new circuit, not the old one
        assert evil.accepted == 2


def test_lost_circuit_errors_name_the_pv(softioc) -> None:
    with HostileCAServer(["EVIL:drop"], {Command.READ_NOTIFY: lambda request: None}) as evil, \
            Context(joint_env(softioc, evil)) as ctx:
        ctx.connect(["EVIL:drop"])
        with pytest.raises(DisconnectedError, match="EVIL:drop") as info:
            ctx.get("EVIL:drop", timeout=5.0)
        assert info.value.pv == "EVIL:drop"
        assert ctx.get("T:ai") == 1.5


def test_header_claiming_a_gigabyte_takes_no_gigabyte(softioc) -> None:
    def lie(request):
        size = (1 << 30) - 8  # below the default EPICS_CA_MAX_ARRAY_BYTES
        return header(Command.READ_NOTIFY, size, 6, size // 8, 1, request.p2) + b"\0" * 64

    env_without_limit = {key: value for key, value in softioc.env.items()
                         if key != "EPICS_CA_MAX_ARRAY_BYTES"}
    with HostileCAServer(["EVIL:huge"], {Command.CREATE_CHAN: created(count=1 << 27),
                                         Command.READ_NOTIFY: lie}) as evil:
        with Context(joint_env(type("Env", (), {"env": env_without_limit}), evil)) as ctx:
            ctx.connect(["EVIL:huge"])
            peak, error = peak_allocation(lambda: ctx.get("EVIL:huge", timeout=0.5))
            assert isinstance(error, PVTimeoutError) and "EVIL:huge" in str(error)
            assert peak < 64 * 1024 * 1024, f"{peak} bytes taken on a header's word"
            (connection,) = [c for c in ctx._engines["ca"]._connections.values()
                             if c.key[1] == evil.port]
            assert len(connection.circuit.receive_view()) < 64 * 1024 * 1024
            assert ctx.get("T:ai") == 1.5
        assert len(connection.circuit.receive_view()) == 0  # freed with the circuit


def unasked_replies() -> bytes:
    """Answers to requests nobody made: unknown ioids, subscriptions, channels."""
    return b"".join([
        header(Command.READ_NOTIFY, 8, 6, 1, 1, 999_999) + struct.pack(">d", 6.0),
        header(Command.EVENT_ADD, 8, 6, 1, 1, 888_888) + struct.pack(">d", 6.0),
        header(Command.WRITE_NOTIFY, 0, 6, 1, 1, 777_777),
        header(Command.ACCESS_RIGHTS, 0, 0, 0, 666_666, 3),
        header(Command.CREATE_CHAN, 0, 6, 1, 555_555, 1),
        header(Command.SERVER_DISCONN, 0, 0, 0, 444_444, 0),
        header(Command.CREATE_CH_FAIL, 0, 0, 0, 333_333, 0),
        header(Command.ERROR, 16, 0, 0, 0, 160) + header(Command.READ_NOTIFY, 0, 6, 1, 1, 2),
    ])


def test_replies_to_requests_never_made_are_ignored(softioc) -> None:
    with HostileCAServer(["EVIL:chatty"], on_accept=lambda: unasked_replies() * 100) as evil, \
            Context(joint_env(softioc, evil)) as ctx:
        assert ctx.get("EVIL:chatty") == 1.0
        evil.send_to_clients(unasked_replies() * 1000)
        assert ctx.get("EVIL:chatty") == 1.0 and ctx.get("T:ai") == 1.5
        assert evil.accepted == 1  # nothing of it was worth closing the circuit


def test_a_flood_of_monitor_updates_leaves_the_real_channel_responsive(softioc) -> None:
    flood = b"".join(header(Command.EVENT_ADD, 8, 6, 1, 1, subscription)
                     + struct.pack(">d", float(subscription)) for subscription in range(1, 50))
    with HostileCAServer(["EVIL:flood"]) as evil, Context(joint_env(softioc, evil)) as ctx:
        ctx.connect(["EVIL:flood", "T:ai"])
        for _ in range(20):
            evil.send_to_clients(flood * 100)
            assert ctx.get("T:ai") == 1.5
        assert ctx.get("EVIL:flood") == 1.0


def test_an_answer_shorter_than_its_count_fails_that_request_only(softioc) -> None:
    def short(request):  # claims 1000 doubles, carries one
        return header(Command.READ_NOTIFY, 8, 6, 1000, 1, request.p2) + struct.pack(">d", 1.0)

    with HostileCAServer(["EVIL:short"], {Command.CREATE_CHAN: created(count=1000),
                                          Command.READ_NOTIFY: short}) as evil, \
            Context(joint_env(softioc, evil)) as ctx:
        with pytest.raises(RemoteProtocolError, match="EVIL:short") as info:
            ctx.get("EVIL:short")
        assert info.value.pv == "EVIL:short"
        assert ctx.get("T:ai") == 1.5 and evil.accepted == 1


def test_a_silent_server_times_out_naming_the_pv_and_its_late_answer_is_dropped(softioc) -> None:
    held: list = []

    def hold(request):  # answer nothing now; the test releases the answer later
        held.append(request)
        return b""

    with HostileCAServer(["EVIL:slow"], {Command.READ_NOTIFY: hold}) as evil, \
            Context(joint_env(softioc, evil)) as ctx:
        ctx.connect(["EVIL:slow"])
        with pytest.raises(PVTimeoutError, match="get of EVIL:slow: no answer") as info:
            ctx.get("EVIL:slow", timeout=0.3)
        assert info.value.pv == "EVIL:slow"
        (late,) = held
        evil.send_to_clients(header(Command.READ_NOTIFY, 8, 6, 1, 1, late.p2)
                             + struct.pack(">d", 9.0))
        assert ctx.get("T:ai") == 1.5 and evil.accepted == 1


def test_a_half_header_then_hang_up_costs_only_that_circuit(softioc) -> None:
    def truncate(request):
        evil.send_to_clients(header(Command.READ_NOTIFY, 8, 6, 1, 1, request.p2)[:10])
        return None  # and close

    with HostileCAServer(["EVIL:cut"], {Command.READ_NOTIFY: truncate}) as evil, \
            Context(joint_env(softioc, evil)) as ctx:
        ctx.connect(["EVIL:cut"])
        with pytest.raises(DisconnectedError, match="EVIL:cut"):
            ctx.get("EVIL:cut", timeout=5.0)
        assert ctx.get("T:ai") == 1.5
        ctx.connect(["EVIL:cut"], timeout=5.0)  # found again on a new circuit
        assert evil.accepted == 2
