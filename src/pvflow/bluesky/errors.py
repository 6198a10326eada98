"""Errors of the bluesky integration, in pvflow's one exception tree.

    PVFlowError
    └── FlyScanError                  a fly scan cannot start, failed, or was refused
        └── FlyScanTimeoutError (also TimeoutError)  it did not start or end in time
"""

from __future__ import annotations

from ..errors import PVFlowError


class FlyScanError(PVFlowError):
    """A fly scan was refused (already flying, controller busy), failed or lost data."""


class FlyScanTimeoutError(FlyScanError, TimeoutError):
    """The busy record did not turn Busy after kickoff, or not Done again in time."""
