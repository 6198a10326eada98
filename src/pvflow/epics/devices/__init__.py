"""The simplest of pyepics' ``epics.devices``: one Device per common record type, with the
record's fields as attributes (integration layer). The detector and scan devices of pyepics
(areaDetector, MCA, scaler, struck ...) are not carried over: ophyd and ophyd-async cover
them."""

from .records import ai, ao, bi, bo

__all__ = ["ai", "ao", "bi", "bo"]
