"""Signal factories on pvflow, mirroring ophyd-async's ``epics_signal_*`` (integration layer).

Names may carry ``ca://`` or ``pva://``; bare names are CA.
"""

from __future__ import annotations

from collections.abc import Callable

from ophyd_async.core import (
    DEFAULT_TIMEOUT,
    SignalDatatypeT,
    SignalR,
    SignalRW,
    SignalW,
    SignalX,
    TriggerableCommand,
)
from ophyd_async.epics.core import EpicsOptions

from .backend import PvflowSignalBackend
from .command import PvflowCommandBackend


def pvflow_signal_rw(datatype: type[SignalDatatypeT], read_pv: str, write_pv: str | None = None,
                     name: str = "", timeout: float = DEFAULT_TIMEOUT, attempts: int = 1,
                     wait: bool | Callable[[SignalDatatypeT], bool] = True
                     ) -> SignalRW[SignalDatatypeT]:
    """A SignalRW reading (and monitoring) ``read_pv`` and writing ``write_pv``."""
    backend = PvflowSignalBackend(datatype, read_pv, write_pv or read_pv,
                                  EpicsOptions(wait=wait))
    return SignalRW(backend, name=name, timeout=timeout, attempts=attempts)


def pvflow_signal_rw_rbv(datatype: type[SignalDatatypeT], write_pv: str,
                         read_suffix: str = "_RBV", name: str = "",
                         timeout: float = DEFAULT_TIMEOUT, attempts: int = 1,
                         wait: bool | Callable[[SignalDatatypeT], bool] = True
                         ) -> SignalRW[SignalDatatypeT]:
    """A SignalRW whose readback is ``write_pv`` plus ``read_suffix`` (before any field)."""
    record, dot, field = write_pv.partition(".")
    read_pv = f"{record}{read_suffix}{dot}{field}"
    return pvflow_signal_rw(datatype, read_pv, write_pv, name, timeout=timeout,
                            attempts=attempts, wait=wait)


def pvflow_signal_r(datatype: type[SignalDatatypeT], read_pv: str, name: str = "",
                    timeout: float = DEFAULT_TIMEOUT) -> SignalR[SignalDatatypeT]:
    return SignalR(PvflowSignalBackend(datatype, read_pv, read_pv), name=name, timeout=timeout)


def pvflow_signal_w(datatype: type[SignalDatatypeT], write_pv: str, name: str = "",
                    timeout: float = DEFAULT_TIMEOUT, attempts: int = 1,
                    wait: bool | Callable[[SignalDatatypeT], bool] = True
                    ) -> SignalW[SignalDatatypeT]:
    backend = PvflowSignalBackend(datatype, write_pv, write_pv, EpicsOptions(wait=wait))
    return SignalW(backend, name=name, timeout=timeout, attempts=attempts)


def pvflow_signal_x(write_pv: str, name: str = "", timeout: float = DEFAULT_TIMEOUT) -> SignalX:
    """A SignalX writing the PV's connect-time value back on trigger."""
    return SignalX(PvflowSignalBackend(None, write_pv, write_pv), name=name, timeout=timeout)


def pvflow_triggerable_command(write_pv: str, execute_value: int = 1, name: str = "",
                               timeout: float = DEFAULT_TIMEOUT) -> TriggerableCommand:
    """A TriggerableCommand writing ``execute_value`` to ``write_pv``."""
    return TriggerableCommand(PvflowCommandBackend(write_pv, execute_value), name=name,
                              timeout=timeout)
