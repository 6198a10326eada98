"""`describe`: the paragraph ``PV.info`` and ``cainfo`` print, in pyepics' layout (integration
layer, no I/O of its own: it reads what the PV object already knows)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .pv import PV

_SHOWN = ("char_value", "count", "nelm", "type", "units", "precision", "host", "access",
          "monitor_delta", "status", "char_status", "severity", "char_severity", "timestamp",
          "posixseconds", "nanoseconds", "upper_ctrl_limit", "lower_ctrl_limit",
          "upper_disp_limit", "lower_disp_limit", "upper_alarm_limit", "lower_alarm_limit",
          "upper_warning_limit", "lower_warning_limit")


def describe(pv: PV) -> str:
    kind, _, base = str(pv.typefull).rpartition("_")
    kind = kind or "native"
    value = pv._args["value"]
    lines = [f"== {pv.pvname}  ({kind}_{base}) =="]
    fields: dict[str, str] = {"value": _value_text(value, base, pv.count or 1)}
    for name in _SHOWN:
        try:
            found = getattr(pv, name)
        except (ValueError, TypeError, KeyError):
            continue
        if found is None:
            continue
        if name == "timestamp":
            found = f"{found:.3f} ({fmt_time(found)})"
        elif name == "char_value":
            found = f"'{found}'"
        fields[name] = str(found)
    for key, text in fields.items():
        lines.append(f"   {key:20s} = {text}" if len(key) > 14 else f"   {key:15s} = {text}")
    if base == "enum" and pv.enum_strs:
        lines.append("   enum strings: ")
        lines.extend(f"       {index} = {name}" for index, name in enumerate(pv.enum_strs))
    if pv._subscription is not None:
        lines.append(f"   PV is internally monitored, with {len(pv.callbacks)} "
                     f"user-defined callbacks")
        for index in sorted(pv.callbacks):
            function = pv.callbacks[index][0]
            code = getattr(function, "__code__", None)
            lines.append(f"      {getattr(function, '__name__', repr(function))} in file "
                         f"'{getattr(code, 'co_filename', '?')}'")
    else:
        lines.append("   PV is NOT internally monitored")
    lines.append("=============================")
    return "\n".join(lines)


def _value_text(value: Any, base: str, count: int) -> str:
    style = "{:g}" if base in ("float", "double") else "{}"
    if count == 1 or not hasattr(value, "__len__") or isinstance(value, str):
        try:
            return style.format(value)
        except (ValueError, TypeError):
            return repr(value)
    shown = ",".join(style.format(item) for item in list(value)[:5])
    return f" array  [{shown}{',....' if count > 10 else ''}]"


def fmt_time(tstamp: float | None = None) -> str:
    """pyepics' timestamp text: ``2026-12-03 21:05:07.12345``."""
    if tstamp is None:
        tstamp = time.time()
    seconds, fraction = divmod(tstamp, 1)
    return "%s.%5.5i" % (time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)),
                         round(1.e5 * fraction))
