"""An EpicsMotor on a simulated motor record, moved fast and slow 200 times while a
deliberately slow subscriber sits on its readback: every move must end only after DMOV=1.

With one monitor thread for all PVs (ophyd's pyepics and caproto layers), the slow RBV
callback would delay every DMOV update behind it; pvflow delivers each PV on its own, in
order, so the motor's completion never waits on the readback's subscriber.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from pvflow.demo.processes import ServerProcess
from tests.servers import epics_env, free_port

REPOSITORY = Path(__file__).resolve().parents[2]
READY_LINE = "Server startup complete"
MOVES = 200


class MotorIOC(ServerProcess):
    """tests/ophyd/motor_ioc.py in a subprocess on its own ports, stopped by PID."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.epics_env = epics_env(free_port(), free_port())
        super().__init__([sys.executable, "-m", "tests.ophyd.motor_ioc", "--prefix", prefix,
                          "-v"], self.epics_env, READY_LINE, name="motor IOC",
                         startup_timeout=60, cwd=REPOSITORY, keep_stdin=False)


@pytest.fixture(scope="module")
def motor_ioc():
    ioc = MotorIOC("pvflowmotor:")
    ioc.start()
    yield ioc
    ioc.stop()


@pytest.fixture(scope="module")
def layer(motor_ioc, install_pvflow):
    yield from install_pvflow(motor_ioc.env)


def test_moves_end_only_after_dmov_despite_a_slow_readback_subscriber(motor_ioc, layer):
    from ophyd import EpicsMotor

    from pvflow import Context

    motor = EpicsMotor(motor_ioc.prefix + "m1", name="m1")
    motor.wait_for_connection(timeout=30)
    checker = Context(motor_ioc.env, timeout=10.0)  # independent reads of the record's state
    readback_updates = []

    def slow_subscriber(value, **kwargs):
        readback_updates.append(value)
        time.sleep(0.02)  # a slow plot or log handler, not synchronisation

    motor.user_readback.subscribe(slow_subscriber)
    try:
        position = 0.0
        for move in range(MOVES):
            fast = move % 2 == 0
            # Signal.set polls the readback in a thread; a stuck one makes the next set raise
            # "Another set() call is still in progress".
            motor.velocity.set(1000.0 if fast else 20.0, timeout=30).wait(30)
            position = round(position + (0.0 if move % 10 == 0 else 0.5 if fast else -0.4), 3)
            status = motor.move(position, wait=False, timeout=30)
            status.wait(30)
            assert status.success, f"move {move} to {position} failed"
            assert checker.get(motor_ioc.prefix + "m1.DMOV") == 1, f"move {move} ended early"
            assert checker.get(motor_ioc.prefix + "m1.RBV") == pytest.approx(position,
                                                                              abs=1e-3)
        assert readback_updates, "the slow subscriber saw no readback updates"
    finally:
        motor.destroy()
        checker.close()
