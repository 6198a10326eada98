"""`Device`: pyepics' collection of PVs sharing a prefix, as attributes (integration layer over
PV objects).

``Device("XX:m1", delim=".", attrs=("VAL", "RBV"))`` makes ``dev.VAL`` read ``XX:m1.VAL`` and
``dev.VAL = 1`` write it, as in pyepics. One difference: the attributes given up front are
connected as one batch of name searches instead of one channel at a time.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import PVTimeoutError
from .pv import PV as ProcessVariable
from .pv import get_pv
from .session import default_session
from .text import IOENCODING



class Device:
    """Attributes named ``prefix + delim + attr`` as PVs; see pyepics' ``epics.Device``."""

    _prefix: str | None = None
    _delim = ""
    _pvs: dict[str, ProcessVariable] = {}
    _init = False
    _aliases: dict[str, str] = {}
    _mutable = True
    _nonpvs: Any = ("_prefix", "_pvs", "_delim", "_init", "_aliases", "_mutable", "_nonpvs")

    def __init__(self, prefix: str = "", attrs: Iterable[str] | None = None,
                 nonpvs: Iterable[str] | None = None, delim: str = "",
                 timeout: float | None = None, mutable: bool = True,
                 aliases: Mapping[str, str] | None = None, with_poll: bool = True):
        self._nonpvs = list(self._nonpvs)
        self._delim = delim
        self._prefix = prefix + delim
        self._pvs = {}
        self._mutable = mutable
        self._aliases = dict(aliases or {})
        for name in nonpvs or ():
            if name not in self._nonpvs:
                self._nonpvs.append(name)
        wanted = list(attrs or ()) + [attr for attr in self._aliases.values()
                                      if attr not in (attrs or ())]
        for attr in wanted:
            self.PV(attr, connect=False, timeout=timeout)
        if wanted and with_poll:
            self._connect_all(timeout)
        self._init = True

    def _connect_all(self, timeout: float | None) -> None:
        """One batch of searches for every attribute given up front."""
        try:
            default_session().context.connect([pv.pvname for pv in self._pvs.values()],
                                              timeout=timeout or 2.0)
        except PVTimeoutError:
            pass  # reading such an attribute later says which one is missing

    def PV(self, attr: str, connect: bool = True, **kw: Any) -> ProcessVariable:  # noqa: N802
        """The PV of an attribute (created on first use)."""
        attr = self._aliases.get(attr, attr)
        if attr not in self._pvs:
            self._pvs[attr] = get_pv(f"{self._prefix or ''}{attr}", **kw)
        pv = self._pvs[attr]
        if connect and not pv.connected:
            pv.wait_for_connection()
        return pv

    def add_pv(self, pvname: str, attr: str | None = None, **kw: Any) -> ProcessVariable:
        """Add a PV whose name does not follow prefix + delim + attr."""
        self._pvs[attr or pvname] = found = get_pv(pvname, **kw)
        return found

    def put(self, attr: str, value: Any, wait: bool = False, use_complete: bool = False,
            timeout: float = 10) -> int | None:
        pv = self.PV(attr)
        pv.wait_for_connection()
        return pv.put(value, wait=wait, use_complete=use_complete, timeout=timeout)

    def get(self, attr: str, as_string: bool = False, count: int | None = None,
            timeout: float | None = None) -> Any:
        return self.PV(attr).get(as_string=as_string, count=count, timeout=timeout)

    def save_state(self) -> dict[str, Any]:
        """The values of every attribute (char waveforms as text)."""
        state = {}
        for key, pv in self._pvs.items():
            state[key] = pv.get()
            if (pv.count or 0) > 1 and pv.type.endswith("char"):
                state[key] = pv.get(as_string=True)
        return state

    get_all = save_state

    def restore_state(self, state: Mapping[str, Any]) -> None:
        for key, value in state.items():
            if key in self._pvs and "write" in (self._pvs[key].access or ""):
                self._pvs[key].put(value)

    def _saved(self, key: str) -> bool:
        pv = self._pvs[key]
        return "write" in (pv.access or "") and (pv.count == 1 or pv.type.endswith("char"))

    def write_state(self, fname: str, state: Mapping[str, Any] | None = None) -> None:
        """Save writable scalar attributes (and char waveforms) to a text file."""
        state = self.save_state() if state is None else state
        header = f"{self.__class__.__name__},prefix='{self._prefix}',time={time.ctime()}"
        lines = [f"#Device Saved State for {header}"]
        lines.extend(f"{key} {state[key]}" for key in sorted(state)
                     if key in self._pvs and self._saved(key))
        lines.append("")
        with open(fname, "w", encoding=IOENCODING) as out:
            out.write("\n".join(lines))

    def read_state(self, fname: str, restore: bool = False) -> dict[str, Any]:
        state: dict[str, Any] = {}
        with open(fname, encoding=IOENCODING) as source:
            for line in source:
                if line.startswith("#") or " " not in line:
                    continue
                key, text = line.rstrip("\n").split(" ", 1)
                if key in self._pvs:
                    kind = self._pvs[key].type.rpartition("_")[2]
                    state[key] = float(text) if kind in ("double", "float") else \
                        int(text) if kind in ("int", "long", "short", "enum") else text
        if restore:
            self.restore_state(state)
        return state

    def add_callback(self, attr: str, callback: Any, **kws: Any) -> int | None:
        self.PV(attr).get()
        return self.PV(attr).add_callback(callback, **kws)

    def remove_callbacks(self, attr: str, index: int | None = None) -> None:
        self.PV(attr).remove_callback(index=index)

    def __getattr__(self, attr: str) -> Any:
        attr = self._aliases.get(attr, attr)
        if attr in self._pvs:
            return self.get(attr)
        if attr in self.__dict__:
            return self.__dict__[attr]
        if self._init and self._mutable and not attr.startswith("__"):
            pv = self.PV(attr, connect=True)
            if pv.connected:
                return pv.get()
        raise AttributeError(f"{self.__class__.__name__} has no attribute {attr}")

    def __setattr__(self, attr: str, value: Any) -> None:
        attr = self._aliases.get(attr, attr)
        if attr in self._nonpvs:
            self.__dict__[attr] = value
        elif attr in self._pvs:
            self.put(attr, value)
        elif self._init and self._mutable and not attr.startswith("__"):
            if not self.PV(attr).connected:
                raise AttributeError(f"{self.__class__.__name__} has no attribute {attr}")
            self.put(attr, value)
        elif attr in self.__dict__ or not self._init:
            self.__dict__[attr] = value
        else:
            raise AttributeError(f"{self.__class__.__name__} has no attribute {attr}")

    def __dir__(self) -> list[str]:
        return sorted({*self._aliases, *self._pvs, *self._nonpvs, *self.__dict__, *dir(Device)})

    def __repr__(self) -> str:
        return f"<Device '{self._prefix}' {len(self._pvs)} attributes>"

    def pv_property(self, attr: str, as_string: bool = False, wait: bool = False,
                    timeout: float = 10.0) -> property:
        return property(lambda self: self.get(attr, as_string=as_string),
                        lambda self, value: self.put(attr, value, wait=wait, timeout=timeout))
