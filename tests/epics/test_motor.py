"""pvflow.epics' Motor on a simulated motor record (caproto's FakeMotor, in a subprocess)."""

from __future__ import annotations

import pytest

from pvflow import Context
from tests.ophyd.test_epics_motor import MotorIOC


@pytest.fixture(scope="module")
def motor():
    import pvflow.epics as epics

    ioc = MotorIOC("pvflowepics:")
    ioc.start()
    context = Context(ioc.epics_env, timeout=5.0)
    epics.use_context(context)
    try:
        yield epics.Motor("pvflowepics:m1")
    finally:
        epics.use_context(None)
        context.close()
        ioc.stop()


def test_move_sets_the_drive(motor):
    # (caproto's simulated record confirms a put at once and keeps LVIO at 1: a move that
    # waited reports DONEW_SOFTLIM, -4, as pyepics would on it)
    drive = motor.PV("VAL")
    assert motor.move(4.0, wait=True) in (0, -4)
    assert drive.get(use_monitor=False) == pytest.approx(4.0)
    assert motor.move(1.0, relative=True, wait=True) in (0, -4)
    assert drive.get(use_monitor=False) == pytest.approx(5.0)
    assert motor.record_type == "motor"  # an alias of .RTYP


def test_move_outside_the_soft_limits_is_refused(motor):
    from pvflow.epics import motor as motor_module

    assert not motor.within_limits(1000.0)
    assert motor.move(1000.0) == motor_module.OUTSIDE_LIMITS
