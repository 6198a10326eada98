"""The exceptions pyepics raises, under its names (integration layer).

Scripts catch these by name (``except epics.ca.ChannelAccessException``), so pvflow.epics
raises them where pyepics does; each message names the PV.
"""

from __future__ import annotations

from typing import Any


class ChannelAccessException(Exception):
    """A channel cannot do what was asked (not connected in time, value not convertible)."""


class ChannelAccessGetFailure(Exception):
    """The server answered a read with an error status."""

    def __init__(self, message: str, chid: Any, status: int):
        super().__init__(message)
        self.chid = chid
        self.status = status


class CASeverityException(Exception):
    """A low-level call returned an error severity."""

    def __init__(self, fcn: str, msg: str):
        super().__init__(f"{fcn}: {msg}")
        self.fcn = fcn
        self.msg = msg
