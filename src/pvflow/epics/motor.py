"""`Motor`: pyepics' EPICS motor record Device (integration layer over Device).

The commonly scripted part of ``epics.Motor``: attribute aliases (``m.drive``, ``m.readback``,
``m.slew_speed`` ...), ``move`` with its return codes, ``get_position``, ``set_position``,
``tweak``, ``stop`` and limit checks. Left out: the ``_able.VAL`` enable
PV, ``set_callback``/``clear_callback`` by alias, ``show_info``/``show_all`` and ``refresh``.
"""

from __future__ import annotations

import threading
from typing import Any

from .device import Device


class MotorLimitException(Exception):
    """A soft or hard limit stops the move."""


class MotorException(Exception):
    """The name is not a motor record, or an attribute does not exist."""


ALIASES = {
    "acceleration": "ACCL", "backlash": "BDST", "dial_high_limit": "DHLM",
    "direction": "DIR", "dial_low_limit": "DLLM", "settle_time": "DLY",
    "done_moving": "DMOV", "dial_readback": "DRBV", "description": "DESC",
    "dial_drive": "DVAL", "units": "EGU", "encoder_step": "ERES", "freeze_offset": "FOFF",
    "high_limit": "HLM", "high_limit_set": "HLS", "home_forward": "HOMF",
    "home_reverse": "HOMR", "jog_forward": "JOGF", "jog_reverse": "JOGR",
    "jog_speed": "JVEL", "low_limit": "LLM", "low_limit_set": "LLS", "soft_limit": "LVIO",
    "moving": "MOVN", "resolution": "MRES", "motor_status": "MSTA", "offset": "OFF",
    "precision": "PREC", "readback": "RBV", "retry_max": "RTRY", "retry_deadband": "RDBD",
    "relative_value": "RLV", "raw_readback": "RRBV", "raw_drive": "RVAL",
    "set": "SET", "stop_go": "SPMG", "stop_command": "STOP", "tweak_forward": "TWF",
    "tweak_reverse": "TWR", "tweak_val": "TWV", "drive": "VAL", "base_speed": "VBAS",
    "slew_speed": "VELO", "max_speed": "VMAX", "device_type": "DTYP", "record_type": "RTYP",
    "status": "STAT",
}

# move()'s return codes, as pyepics
NONFLOAT, OUTSIDE_LIMITS, UNCONNECTED = -13, -12, -11
TIMEOUT, TIMEOUT_BUTDONE, UNKNOWN_ERROR = -8, -7, -5
DONEW_SOFTLIM, DONEW_HARDLIM, DONE_OK = -4, -3, 0
MOVE_BEGUN, MOVE_BEGUN_CONFIRMED, NOWAIT_HARDLIM, NOWAIT_SOFTLIM = 0, 1, 3, 4


class Motor(Device):
    """An EPICS motor record: ``Motor("XX:m1").move(2.0, wait=True)``."""

    _init_list = ("VAL", "DESC", "RTYP", "RBV", "PREC", "TWV", "FOFF", "VELO", "STAT", "SET",
                  "LLM", "HLM", "SPMG", "LVIO", "HLS", "LLS", "DMOV", "MOVN")
    _nonpvs = ("_prefix", "_pvs", "_delim", "_init", "_aliases", "_mutable", "_nonpvs",
               "_init_list")

    def __init__(self, name: str | None = None, timeout: float = 3.0):
        if name is None:
            raise MotorException("must supply motor name")
        name = name.removesuffix(".VAL").removesuffix(".")
        Device.__init__(self, name, delim=".", attrs=self._init_list, timeout=timeout,
                        aliases=ALIASES)
        if self.get("RTYP") != "motor":
            raise MotorException(f"{name} is not an Epics Motor")

    def __repr__(self) -> str:
        return f"<epics.Motor: {(self._prefix or '').rstrip('.')}: '{self.get('DESC')}'>"

    def __getattr__(self, attr: str) -> Any:
        try:
            return Device.__getattr__(self, attr)
        except AttributeError:
            raise MotorException(f"EpicsMotor has no attribute {attr}") from None

    def check_limits(self) -> None:
        """Raise MotorLimitException when a soft or hard limit is active."""
        for field, text in (("LVIO", "Soft limit violation"),
                            ("HLS", "High hard limit violation"),
                            ("LLS", "Low  hard limit violation")):
            if self.get(field) != 0:
                raise MotorLimitException(text)

    def within_limits(self, val: float, dial: bool = False) -> bool:
        low, high = ("DLLM", "DHLM") if dial else ("LLM", "HLM")
        return self.get(low) <= val <= self.get(high)

    def move(self, val: float | None = None, relative: bool = False, wait: bool = False,
             timeout: float = 300.0, dial: bool = False, step: bool = False,
             raw: bool = False, ignore_limits: bool = False,
             confirm_move: bool = False) -> int:
        """Move to ``val``; pyepics' return codes (0 done or begun, 1 begun and confirmed,
        negative on failure)."""
        step = step or raw
        try:
            target = float(val)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return NONFLOAT
        drive = "DVAL" if dial else "RVAL" if step else "VAL"
        if relative:  # from the record itself: a monitor may still be on its way
            target += self.PV(drive).get(use_monitor=False)
        if not ignore_limits and not step and not self.within_limits(target, dial=dial):
            return OUTSIDE_LIMITS
        status = self.put(drive, target, wait=wait, timeout=timeout)
        if status is None:
            return UNCONNECTED
        if wait and status == -1:
            return TIMEOUT if self.get("DMOV") == 0 else TIMEOUT_BUTDONE
        if status != 1:
            return UNKNOWN_ERROR
        if wait:
            if self.get("LVIO") == 1:
                return DONEW_SOFTLIM
            return DONEW_HARDLIM if 1 in (self.get("HLS"), self.get("LLS")) else DONE_OK
        if confirm_move:
            self._wait_for("MOVN", 1, 0.25)
        if self.get("MOVN") == 1:
            return MOVE_BEGUN_CONFIRMED
        if self.get("LVIO") == 1:
            return NOWAIT_SOFTLIM
        return NOWAIT_HARDLIM if 1 in (self.get("HLS"), self.get("LLS")) else MOVE_BEGUN

    def _wait_for(self, field: str, wanted: Any, timeout: float) -> bool:
        """Wait on the field's monitor (no polling) until it equals ``wanted``."""
        reached = threading.Event()

        def check(value: Any = None, **ignored: Any) -> None:
            if value == wanted:
                reached.set()

        pv = self.PV(field)
        index = pv.add_callback(check, run_now=True, with_ctrlvars=False)
        try:
            return reached.wait(timeout)
        finally:
            pv.remove_callback(index)

    def get_position(self, dial: bool = False, readback: bool = False, step: bool = False,
                     raw: bool = False) -> Any:
        """Drive (or readback) position in user, dial or raw coordinates."""
        step = step or raw
        if readback:
            return self.get("DRBV" if dial else "RRBV" if step else "RBV")
        return self.get("DVAL" if dial else "RVAL" if step else "VAL")

    def set_position(self, position: float, dial: bool = False, step: bool = False,
                     raw: bool = False) -> None:
        """Redefine the current position (SET mode: the motor does not move)."""
        self.put("SET", 1, wait=True)
        self.put("DVAL" if dial else "RVAL" if step or raw else "VAL", position, wait=True)
        self.put("SET", 0, wait=True)

    def tweak(self, direction: str = "foreward", wait: bool = False,
              timeout: float = 300.0) -> int | None:
        """Move one tweak step (TWV) forward or ``"reverse"``."""
        field = "TWR" if direction.startswith("rev") else "TWF"
        return self.put(field, 1, wait=wait, timeout=timeout)

    def stop(self) -> None:
        self.put("STOP", 1)

    def make_step_list(self, minstep: float = 0.0, maxstep: float | None = None,
                       decades: int = 10) -> list[float]:
        """pyepics' tweak-step choices: 1, 2, 5 per decade below the travel range."""
        if maxstep is None:
            maxstep = 0.6 * abs(self.get("HLM") - self.get("LLM"))
        steps: list[float] = []
        for decade in range(-decades, decades):
            for mantissa in (1, 2, 5):
                step = mantissa * 10.0 ** decade
                if minstep <= step <= maxstep:
                    steps.append(step)
        return steps
