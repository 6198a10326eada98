"""``epics.ca``'s reads: ``get`` (waiting or collected later with ``get_complete``), the
CTRL and TIME metadata and the shortcuts built on them (integration layer over Context).

A read with ``ftype`` asks for the form (native, TIME, CTRL) that ``ftype`` names and, for
``DBR_STRING`` on a non-string channel, the value as text; other type conversions on the
server are not requested.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ...errors import PVFlowError, PVTimeoutError
from ...reading import Reading
from .. import dbr
from ..exceptions import ChannelAccessGetFailure
from ..fields import char_value, is_array, read_metadata
from .channels import Chid, chid_of, connect_channel, context, field_type, native_of, \
    promote_type, setting

log = logging.getLogger("pvflow.epics")

_readers: ThreadPoolExecutor | None = None
_readers_lock = threading.Lock()


def unpacked(value: Any, native_type: str, count: int | None, as_numpy: bool) -> Any:
    """pyepics' ``_unpack``: one element as a scalar, numeric arrays as numpy (or lists),
    string arrays as lists."""
    if not is_array(value):
        return value
    if count == 1 and len(value) >= 1:
        return value[0].item() if isinstance(value, np.ndarray) else value[0]
    if native_type == "STRING" or not (as_numpy and setting("HAS_NUMPY")):
        return value.tolist() if isinstance(value, np.ndarray) else list(value)
    return value if isinstance(value, np.ndarray) else np.asarray(value)


def as_text(value: Any, chid: Chid, native_type: str, count: int, ftype: int) -> str:
    """pyepics' ``_as_string``: char waveforms as text, enums as their label, other arrays
    as ``<array count=N, type=T>``."""
    if native_type == "CHAR" and count < setting("AUTOMONITOR_MAXLENGTH"):
        return char_value(value, "CHAR", count, None, None)
    if native_type == "ENUM" and count == 1 and not isinstance(value, str):
        labels = get_enum_strings(chid) or ()
        return labels[value] if 0 <= value < len(labels) else str(value)
    if count > 1 and is_array(value):
        return f"<array count={count}, type={ftype}>"
    return str(value)


def _read(chid: Chid, ftype: int, count: int | None, timeout: float | None,
          as_string: bool, as_numpy: bool) -> dict[str, Any] | None:
    native_type, elements = native_of(chid)
    form = dbr.form_of(ftype)
    text = dbr.native_type(ftype) == dbr.STRING and native_type != "STRING"
    wanted = None if not count else min(count, elements)
    try:
        reading = context().get(chid.pvname, form=form, count=wanted, as_string=text,
                                 timeout=timeout if timeout is not None else
                                 1.0 + np.log10(max(1, wanted or elements)))
    except PVTimeoutError:
        log.warning("ca.get('%s') timed out", chid.pvname)
        return None
    except PVFlowError as error:
        raise ChannelAccessGetFailure(f"{chid.pvname}: get failed: {error}", chid=chid,
                                      status=dbr.ECA_BADCHID) from error
    value = reading.value if isinstance(reading, Reading) else reading
    found = read_metadata(reading, form)
    value = unpacked(value, native_type, wanted, as_numpy)
    if as_string:
        value = as_text(value, chid, native_type, wanted or elements, ftype)
    found["value"] = value
    return found


def _reader_pool() -> ThreadPoolExecutor:
    global _readers
    with _readers_lock:
        if _readers is None:
            _readers = ThreadPoolExecutor(4, thread_name_prefix="pvflow-epics-get")
    return _readers


def get_with_metadata(chid: Any, ftype: int | None = None, count: int | None = None,
                      wait: bool = True, timeout: float | None = None, as_string: bool = False,
                      as_numpy: bool = True) -> dict[str, Any] | None:
    """The value with the metadata of ``ftype``'s form; None when not connected in time or
    (with ``wait=False``) until ``get_complete`` collects it."""
    found = chid_of(chid)
    if not found.ready and not connect_channel(found, timeout):
        return None
    code = field_type(found) if ftype is None else ftype
    if code < 0:
        return None
    if not wait:
        found.pending[code] = _reader_pool().submit(_read, found, code, count, timeout,
                                                    as_string, as_numpy)
        return None
    return _read(found, code, count, timeout, as_string, as_numpy)


def get(chid: Any, ftype: int | None = None, count: int | None = None, wait: bool = True,
        timeout: float | None = None, as_string: bool = False, as_numpy: bool = True) -> Any:
    found = get_with_metadata(chid, ftype=ftype, count=count, wait=wait, timeout=timeout,
                              as_string=as_string, as_numpy=as_numpy)
    return None if found is None else found["value"]


def get_complete_with_metadata(chid: Any, ftype: int | None = None, count: int | None = None,
                               timeout: float | None = None, as_string: bool = False,
                               as_numpy: bool = True) -> dict[str, Any] | None:
    """The result of an earlier ``get(..., wait=False)``."""
    found = chid_of(chid)
    code = field_type(found) if ftype is None else ftype
    pending = found.pending.pop(code, None)
    if pending is None:
        log.warning("%s: get_complete without initial get() call", found.pvname)
        return None
    result = pending.result()
    if result is not None and as_string and not isinstance(result["value"], str):
        native_type, elements = native_of(found)
        result["value"] = as_text(result["value"], found, native_type, elements, code)
    return result


def get_complete(chid: Any, ftype: int | None = None, count: int | None = None,
                 timeout: float | None = None, as_string: bool = False,
                 as_numpy: bool = True) -> Any:
    found = get_complete_with_metadata(chid, ftype=ftype, count=count, timeout=timeout,
                                       as_string=as_string, as_numpy=as_numpy)
    return None if found is None else found["value"]


def get_ctrlvars(chid: Any, timeout: float = 5.0, warn: bool = True) -> dict[str, Any] | None:
    """The CTRL fields: status, severity and, by type, units, precision, limits, enum_strs."""
    return _metadata_only(chid, promote_type(chid, use_ctrl=True), timeout)


def get_timevars(chid: Any, timeout: float = 5.0, warn: bool = True) -> dict[str, Any] | None:
    """The TIME fields: status, severity, timestamp."""
    return _metadata_only(chid, promote_type(chid, use_time=True), timeout)


def _metadata_only(chid: Any, ftype: int, timeout: float) -> dict[str, Any] | None:
    found = get_with_metadata(chid, ftype=ftype, count=1, timeout=timeout)
    if found is not None:
        found.pop("value", None)
    return found


def get_timestamp(chid: Any) -> float:
    return (get_timevars(chid) or {}).get("timestamp", 0)


def get_severity(chid: Any) -> int:
    return (get_timevars(chid) or {}).get("severity", 0)


def get_precision(chid: Any) -> int | None:
    if field_type(chid) in (dbr.FLOAT, dbr.DOUBLE):
        return (get_ctrlvars(chid) or {}).get("precision")
    return None


def get_enum_strings(chid: Any) -> tuple[str, ...] | None:
    if field_type(chid) == dbr.ENUM:
        return (get_ctrlvars(chid) or {}).get("enum_strs")
    return None
