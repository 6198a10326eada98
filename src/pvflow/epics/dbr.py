"""pyepics' ``epics.dbr`` numbers: DBR type codes, channel states, event masks, alarm names
(integration layer, no I/O).

Scripts compare against these constants (``ca.field_type(chid) == dbr.DOUBLE``,
``mask=dbr.DBE_VALUE | dbr.DBE_ALARM``), so they keep libca's values. The ctypes structures
of pyepics' module are not here: pvflow decodes the wire itself and never hands out DBR
structures.
"""

from __future__ import annotations

from enum import IntEnum

ECA_NORMAL = 1
ECA_TIMEOUT = 80
ECA_IODONE = 339
ECA_ISATTACHED = 424
ECA_BADCHID = 410

CS_NEVER_CONN = 0
CS_PREV_CONN = 1
CS_CONN = 2
CS_CLOSED = 3
CS_NEVER_SEARCH = 4
OP_CONN_UP = 6
OP_CONN_DOWN = 7

STRING, INT, SHORT, FLOAT, ENUM, CHAR, LONG, DOUBLE = 0, 1, 1, 2, 3, 4, 5, 6
TIME_STRING, TIME_INT, TIME_SHORT, TIME_FLOAT = 14, 15, 15, 16
TIME_ENUM, TIME_CHAR, TIME_LONG, TIME_DOUBLE = 17, 18, 19, 20
CTRL_STRING, CTRL_INT, CTRL_SHORT, CTRL_FLOAT = 28, 29, 29, 30
CTRL_ENUM, CTRL_CHAR, CTRL_LONG, CTRL_DOUBLE = 31, 32, 33, 34
TYPENOTCONN = -1  # libca's field type of a channel that is not connected

MAX_STRING_SIZE = 40
MAX_UNITS_SIZE = 8
MAX_ENUM_STRING_SIZE = 26
MAX_ENUMS = 16

DBE_VALUE = 1
DBE_LOG = 2
DBE_ALARM = 4
DBE_PROPERTY = 8

EPICS2UNIX_EPOCH = 631152000.0

_NATIVE_NAMES = ("STRING", "INT", "FLOAT", "ENUM", "CHAR", "LONG", "DOUBLE")
_NAMES = {code: name for code, name in enumerate(_NATIVE_NAMES)}
_NAMES.update({TIME_STRING + code: f"TIME_{name}" for code, name in enumerate(_NATIVE_NAMES)})
_NAMES.update({CTRL_STRING + code: f"CTRL_{name}" for code, name in enumerate(_NATIVE_NAMES)})
_NAMES[TIME_SHORT] = "TIME_SHORT"
_NAMES[CTRL_SHORT] = "CTRL_SHORT"

# pvflow's native type names (pvflow.ca.dbr.Native, and pvAccess types as fields.dbr_native
# reports them) to the codes above.
CODES = {"STRING": STRING, "SHORT": SHORT, "INT": SHORT, "FLOAT": FLOAT, "ENUM": ENUM,
         "CHAR": CHAR, "LONG": LONG, "DOUBLE": DOUBLE}


class AlarmSeverity(IntEnum):
    NO_ALARM = 0
    MINOR = 1
    MAJOR = 2
    INVALID = 3


class AlarmStatus(IntEnum):
    NO_ALARM = 0
    READ = 1
    WRITE = 2
    HIHI = 3
    HIGH = 4
    LOLO = 5
    LOW = 6
    STATE = 7
    COS = 8
    COMM = 9
    TIMEOUT = 10
    HWLIMIT = 11
    CALC = 12
    SCAN = 13
    LINK = 14
    SOFT = 15
    BAD_SUB = 16
    UDF = 17
    DISABLE = 18
    SIMM = 19
    READ_ACCESS = 20
    WRITE_ACCESS = 21


def Name(ftype: int | str, reverse: bool = False) -> int | str:  # noqa: N802  (pyepics' name)
    """The name of a DBR type code (``6`` -> ``"DOUBLE"``), or with ``reverse`` the code of
    a name."""
    if reverse:
        wanted = str(ftype).upper()
        for code, name in _NAMES.items():
            if name == wanted:
                return code
        return "unknown"
    return _NAMES.get(ftype, "unknown") if isinstance(ftype, int) else "unknown"


def native_type(ftype: int) -> int:
    """The native code of a TIME or CTRL variant (``20`` -> ``6``)."""
    if ftype == CTRL_STRING:
        return STRING
    if ftype > CTRL_STRING:
        return ftype - CTRL_STRING
    if ftype >= TIME_STRING:
        return ftype - TIME_STRING
    return ftype


def promote_fieldtype(ftype: int, use_time: bool = False, use_ctrl: bool = False) -> int:
    """The TIME or CTRL variant of a native code (a CTRL string is a TIME string, as in libca)."""
    if ftype < 0:
        return ftype
    if use_ctrl:
        ftype += CTRL_STRING
    elif use_time:
        ftype += TIME_STRING
    return TIME_STRING if ftype == CTRL_STRING else ftype


def form_of(ftype: int) -> str:
    """The pvflow read form a DBR code asks for: ``"ctrl"``, ``"time"`` or ``"value"``."""
    if ftype >= CTRL_STRING:
        return "ctrl"
    return "time" if ftype >= TIME_STRING else "value"
