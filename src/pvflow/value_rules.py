"""What a value must be to be written to a PV, whichever protocol carries it (codec layer: pure,
imports only numpy).

Channel Access and pvAccess refuse the same values with the same words, before a byte is
sent: None, things that are not numbers, NaN or infinity into an integer, and numbers outside
the range of the PV's type (a server would wrap them, or the encoder would fail after the
request was already half on the wire).
"""

from __future__ import annotations

from typing import Any

import numpy as np

FLOAT32_MAX = 3.4028234663852886e38


def as_numbers(value: Any) -> np.ndarray:
    """``value`` as a flat numeric array; ``ValueError`` for anything that is not numbers."""
    if value is None:
        raise ValueError("None is not a value")
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nesting
        raise ValueError(f"cannot make an array of {value!r}: {exc}") from None
    if array.dtype.kind in "US":
        try:
            return np.asarray([float(item) for item in array.ravel()])
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    if array.dtype.kind == "O":  # Python ints beyond 64 bits: compared as floats below
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"{value!r} is not a number or an array of numbers") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{value!r} is not a number or an array of numbers")
    return array.ravel()


def check_fits(numbers: np.ndarray, dtype: np.dtype, value: Any) -> None:
    """``ValueError`` unless every number fits ``dtype`` (the PV's element type)."""
    if not numbers.size:
        return
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if numbers.dtype.kind == "f" and not np.all(np.isfinite(numbers)):
            raise ValueError(f"{value!r} is not finite; the PV holds integers")
        if numbers.min() < info.min or numbers.max() > info.max:
            raise ValueError(f"{value!r} is outside {info.min}..{info.max}, the range of the "
                             f"PV's type")
    elif dtype.kind == "f" and dtype.itemsize == 4:
        finite = numbers[np.isfinite(numbers)]
        if finite.size and np.abs(finite).max() > FLOAT32_MAX:
            raise ValueError(f"{value!r} does not fit a 32-bit float")
