"""ophyd-async's datatype rules for EPICS signals, built on its public API (integration layer).

ophyd-async keeps these two helpers in a private module (``ophyd_async.epics.core._util``),
so they are written here from its public pieces (``get_enum_cls``, ``get_dtype`` and the
three enum kinds), with the same messages, so a signal on pvflow fails as one on aioca or p4p.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any, get_args, get_origin

import numpy as np
from ophyd_async.core import StrictEnum, SubsetEnum, SupersetEnum, get_dtype, get_enum_cls


def supported_values(pv: str, datatype: Any, pv_choices: Sequence[str]
                     ) -> Mapping[str, Enum | str]:
    """Each choice of ``pv`` as a member of ``datatype`` (a string where a SubsetEnum lacks
    it); TypeError when the enum kind does not allow the PV's choices."""
    enum_cls = get_enum_cls(datatype)
    if not enum_cls:
        raise TypeError(f"{datatype} is not an Enum")
    choices = [member.value for member in enum_cls]
    error = f"{pv} has choices {pv_choices}, but {datatype} requested {choices} "
    if issubclass(enum_cls, StrictEnum):
        if set(choices) != set(pv_choices):
            raise TypeError(error + "to be strictly equal to them.")
    elif issubclass(enum_cls, SubsetEnum):
        if not set(choices).issubset(pv_choices):
            raise TypeError(error + "to be a subset of them.")
    elif issubclass(enum_cls, SupersetEnum):
        if not set(pv_choices).issubset(choices):
            raise TypeError(error + "to be a superset of them.")
    else:
        raise TypeError(f"{datatype} is not a StrictEnum, SubsetEnum, or SupersetEnum")
    return {choice: enum_cls(choice) for choice in pv_choices}


def datatype_name(datatype: Any) -> str:
    """How ophyd-async names a datatype in its messages (``Array1D[np.float64]``...)."""
    if get_origin(datatype) is np.ndarray and get_args(datatype):
        return f"Array1D[np.{get_dtype(datatype).name}]"
    if get_origin(datatype) is Sequence:
        return f"Sequence[{get_args(datatype)[0].__name__}]"
    if isinstance(datatype, type):
        return datatype.__name__
    return str(datatype)
