"""What a simulated fly scan measures: motor positions along the scan and the detector signal.

Application layer, but pure: no EPICS, no clock, no I/O. The controller IOC samples these
functions in real time; tests and demos can call them to know which values a scan must yield.

The motor moves at constant speed from ``start`` to ``end``; the detector is triggered at
``points`` equally spaced positions (as an encoder-triggered detector would be), one every
``period`` seconds. The signal is ``background + amplitude * shape((x - center) / width)``
plus optional Gaussian noise.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np


class SignalShape(enum.Enum):
    """Detector signal shapes; the values are the strings of the ``fly:shape`` mbbo record."""

    GAUSSIAN = "gaussian"
    LORENTZIAN = "lorentzian"
    STEP = "step"
    SINE = "sine"
    LINEAR = "linear"
    CONSTANT = "constant"


@dataclass(frozen=True, slots=True)
class ScanSettings:
    """Everything that defines one scan; snapshotted when the scan starts.

    A snapshot, because an operator may change the settings PVs during a scan: the running scan
    keeps the settings it started with, the next one takes the new ones.
    """

    points: int = 100
    start: float = 0.0
    end: float = 10.0
    period: float = 0.01
    shape: SignalShape = SignalShape.GAUSSIAN
    center: float = 5.0
    width: float = 1.0
    amplitude: float = 1.0
    background: float = 0.0
    noise: float = 0.0

    def __post_init__(self) -> None:
        if self.points < 1:
            raise ValueError(f"points must be at least 1, got {self.points}")
        if not (math.isfinite(self.period) and self.period > 0):
            raise ValueError(f"period must be a positive number of seconds, got {self.period}")
        if not (math.isfinite(self.width) and self.width > 0):
            raise ValueError(f"width must be positive, got {self.width}")
        if not (math.isfinite(self.noise) and self.noise >= 0):
            raise ValueError(f"noise must be zero or positive, got {self.noise}")
        for name in ("start", "end", "center", "amplitude", "background"):
            value = getattr(self, name)
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")

    @property
    def step(self) -> float:
        """Distance between two trigger positions (0 for a one-point scan)."""
        return 0.0 if self.points == 1 else (self.end - self.start) / (self.points - 1)

    @property
    def speed(self) -> float:
        """Constant motor speed in position units per second (signed)."""
        return self.step / self.period

    @property
    def duration(self) -> float:
        """Seconds from the first to the last trigger."""
        return (self.points - 1) * self.period


def position(settings: ScanSettings, index: int) -> float:
    """Motor position at trigger ``index`` (0-based)."""
    if not 0 <= index < settings.points:
        raise ValueError(f"index {index} outside the scan's 0..{settings.points - 1}")
    if index == settings.points - 1:
        return settings.end if settings.points > 1 else settings.start
    return settings.start + index * settings.step


def positions(settings: ScanSettings) -> np.ndarray:
    """All trigger positions of the scan."""
    return np.array([position(settings, i) for i in range(settings.points)])


def signal(settings: ScanSettings, x: float, rng: np.random.Generator | None = None) -> float:
    """Detector signal at motor position ``x``; noise only if ``rng`` is given and noise > 0."""
    u = (x - settings.center) / settings.width
    shape = settings.shape
    if shape is SignalShape.GAUSSIAN:
        profile = math.exp(-0.5 * u * u)
    elif shape is SignalShape.LORENTZIAN:
        profile = 1.0 / (1.0 + u * u)
    elif shape is SignalShape.STEP:
        profile = 0.5 * (1.0 + math.erf(u / math.sqrt(2.0)))
    elif shape is SignalShape.SINE:
        profile = math.sin(u)
    elif shape is SignalShape.LINEAR:
        profile = u
    else:
        profile = 1.0
    value = settings.background + settings.amplitude * profile
    if rng is not None and settings.noise > 0:
        value += float(rng.normal(0.0, settings.noise))
    return value
