"""A caproto IOC with one simulated motor record (caproto's FakeMotor) ticking at 100 Hz.

    python -m tests.ophyd.motor_ioc --prefix PREFIX: -v

Serves ``PREFIX:m1`` with the motor record fields ophyd's EpicsMotor uses (.VAL, .RBV,
.DMOV, .MOVN, .VELO ...). Like the real record, DMOV drops to 0 and back to 1 on every move,
even a move of zero length.
"""

from caproto.ioc_examples.fake_motor_record import FakeMotor
from caproto.server import PVGroup, SubGroup, ioc_arg_parser, run


class MotorIOC(PVGroup):
    """One fast-ticking simulated motor."""

    m1 = SubGroup(FakeMotor, velocity=10.0, precision=3, user_limits=(-100.0, 100.0),
                  tick_rate_hz=100.0, prefix="m1")


if __name__ == "__main__":
    ioc_options, run_options = ioc_arg_parser(default_prefix="pvflow:", desc=MotorIOC.__doc__)
    run(MotorIOC(**ioc_options).pvdb, **run_options)
