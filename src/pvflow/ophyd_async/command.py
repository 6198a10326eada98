"""`PvflowCommandBackend`: a TriggerableCommand writing one value to one PV (integration
layer), the pvflow twin of ophyd-async's ``CaCommandBackend``."""

from __future__ import annotations

from ophyd_async.core import NotConnectedError
from ophyd_async.epics.core._util import EpicsCommandBackend

from ..context import Context
from ..errors import PVFlowError
from .backend import shared_context

_SCALAR_NUMERIC = ("SHORT", "CHAR", "LONG", "ENUM")  # PROC-like fields; a float means a typo


class PvflowCommandBackend(EpicsCommandBackend):
    """On ``execute()``, writes ``execute_value`` to ``write_pv`` and waits for completion."""

    def __init__(self, write_pv: str = "", execute_value: int = 1,
                 context: Context | None = None):
        super().__init__(write_pv, execute_value)
        self._context = context

    @property
    def context(self) -> Context:
        return self._context or shared_context()

    def source(self, name: str) -> str:
        return self.write_pv if "://" in self.write_pv else f"ca://{self.write_pv}"

    async def connect(self, timeout: float) -> None:
        try:
            await self.context.connect_async([self.write_pv], timeout=timeout)
        except PVFlowError as error:
            raise NotConnectedError(self.source("")) from error
        info = self.context.info(self.write_pv)
        if info.element_count > 1:
            raise TypeError(f"{self.source('')} is an array PV; PvflowCommandBackend "
                            f"requires a scalar numeric PV")
        if info.native_type not in _SCALAR_NUMERIC:
            raise TypeError(f"{self.source('')} is not a numeric PV (native type "
                            f"{info.native_type}); PvflowCommandBackend requires a scalar "
                            f"numeric PV")

    async def execute(self) -> None:
        await self.context.put_async(self.write_pv, self._execute_value, wait=True,
                                     timeout=None)
