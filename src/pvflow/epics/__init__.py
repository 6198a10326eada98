"""pyepics' API on pvflow: ``import pvflow.epics as epics`` and a pyepics script runs as is.

    import pvflow.epics as epics
    epics.caget("XX:m1.RBV")
    pv = epics.PV("pva://XX:image", callback=show)

The same names, signatures, keyword arguments, return values, callback keywords and
exceptions as pyepics 3.5 (``caget``, ``caput``, ``cainfo``, ``camonitor``, ``caget_many``,
``caput_many``, ``PV``, ``get_pv``, ``Device``, ``Motor``, ``poll``, the ``ca`` module), on
pvflow's Channel Access and pvAccess engines: ``pva://`` names work everywhere a name does.
:func:`use_as_epics` makes ``import epics`` give this package. See docs/epics.md.

Integration layer: built on :class:`pvflow.Context`; pvflow's ophyd control layer builds on
its PV class.
"""

from __future__ import annotations

from . import ca, dbr, pv
from . import processes as multiproc
from . import text as utils
from .alias import use_as_epics
from .ca import poll
from .commands import caget, caget_many, cainfo, camonitor, camonitor_clear, caput, caput_many
from .device import Device
from .exceptions import CASeverityException, ChannelAccessException, ChannelAccessGetFailure
from .motor import Motor
from .processes import CAPool, CAProcess
from .pv import PV, get_pv
from .session import use_context

__version__ = "3.5.10"  # the pyepics API this package follows (ophyd checks it)

NO_ALARM, MINOR_ALARM, MAJOR_ALARM, INVALID_ALARM = 0, 1, 2, 3

ca.register_clear_cache(pv.clear_pvcache)

__all__ = [
    "CAPool", "CAProcess", "CASeverityException", "ChannelAccessException",
    "ChannelAccessGetFailure", "Device", "Motor", "PV", "ca", "caget", "caget_many", "cainfo",
    "camonitor", "camonitor_clear", "caput", "caput_many", "dbr", "get_pv", "multiproc", "poll", "pv", "utils",
    "use_as_epics", "use_context",
]
