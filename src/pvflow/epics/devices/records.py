"""Devices for the analog and binary record types, with pyepics' attribute lists."""

from __future__ import annotations

from typing import Any

from ..device import Device

_COMMON = ("VAL", "EGU", "HOPR", "LOPR", "PREC", "NAME", "DESC", "DTYP", "HIHI", "LOLO",
           "HIGH", "LOW", "HHSV", "LLSV", "HSV", "LSV", "HYST")


class _Record(Device):
    attrs: tuple[str, ...] = ()

    def __init__(self, prefix: str, **kwargs: Any):
        Device.__init__(self, prefix.removesuffix("."), delim=".", attrs=self.attrs, **kwargs)


class ai(_Record):  # noqa: N801  (pyepics' names)
    "Simple analog input device"
    attrs = ("INP", "PINI", "LINR", "EGUF", "EGUL", "AOFF", "ASLO", "ESLO", "EOFF",
             "SMOO", "ADEL", "MDEL", "RVAL", "ROFF", *_COMMON)


class ao(_Record):  # noqa: N801
    "Simple analog output device"
    attrs = ("OUT", "LINR", "RVAL", "ROFF", "EGUF", "EGUL", "AOFF", "ASLO", "ESLO", "EOFF",
             *_COMMON, "OMSL", "DOL", "OIF", "DRVH", "DRVL", "OROC", "OVAL")


class bi(_Record):  # noqa: N801
    "Simple binary input device"
    attrs = ("INP", "ZNAM", "ONAM", "RVAL", "DESC", "VAL", "NAME", "ZSV", "OSV", "COSV")


class bo(_Record):  # noqa: N801
    "Simple binary output device"
    attrs = ("OUT", "ZNAM", "ONAM", "RVAL", "DESC", "VAL", "NAME", "HIGH", "DOL", "OMSL",
             "ZSV", "OSV", "COSV")
