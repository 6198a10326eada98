"""PVI discovery over pvflow: ophyd-async's ``PviDeviceConnector`` reads a device's PVI
structure with ``pvget_with_timeout`` (integration layer)."""

from __future__ import annotations

from typing import Any

from ophyd_async.core import NotConnectedError

from ..errors import PVFlowError
from .backend import shared_context


class Structure(dict[str, Any]):
    """A decoded pvAccess structure, readable the way ophyd-async reads a p4p ``Value``:
    by field name, and whole through ``todict()``."""

    def todict(self) -> dict[str, Any]:
        return dict(self)


async def pvget_with_timeout(pv: str, timeout: float) -> Structure:
    """The structure served as ``pva://pv``, each substructure a :class:`Structure`."""
    try:
        value = await shared_context().get_async(f"pva://{pv}", timeout=timeout)
    except PVFlowError as error:
        raise NotConnectedError(f"pva://{pv}") from error
    return Structure({name: Structure(item) if isinstance(item, dict) else item
                      for name, item in value.items()})
