"""`PvflowCommandBackend`: a TriggerableCommand writing one value to one PV (integration
layer), the pvflow twin of ophyd-async's ``CaCommandBackend`` and ``PvaCommandBackend``."""

from __future__ import annotations

from ophyd_async.core import NotConnectedError
from ophyd_async.epics.core import EpicsCommandBackend

from ..context import Context
from ..errors import PVFlowError
from .backend import native_of, shared_context, with_scheme

# CA DBR types and pvAccess types a command may write to (a float means the wrong record:
# PROC-like fields are integers; ophyd-async's pvAccess backend also takes a boolean)
_ACCEPTED = ("SHORT", "CHAR", "LONG", "ENUM", "boolean", "long", "enum")
_REQUIREMENTS = {"ca": "a scalar numeric PV",
                 "pva": "a scalar boolean, scalar numeric, or enum PV"}


class PvflowCommandBackend(EpicsCommandBackend):
    """On ``execute()``, writes ``execute_value`` to ``write_pv`` and waits for completion;
    PV names without a scheme are ``protocol`` (CA here)."""

    protocol = "ca"

    def __init__(self, write_pv: str = "", execute_value: int = 1,
                 context: Context | None = None):
        super().__init__(write_pv, execute_value)
        self._context = context

    @property
    def context(self) -> Context:
        return self._context or shared_context()

    def source(self, name: str) -> str:
        return with_scheme(self.write_pv, self.protocol)

    async def connect(self, timeout: float) -> None:
        name = self.source("")
        try:
            reading = await self.context.get_async(name, form="ctrl", timeout=timeout)
        except PVFlowError as error:
            raise NotConnectedError(name) from error
        native = native_of(self.context, name, reading)
        if native.is_array or native.type not in _ACCEPTED:
            requirement = _REQUIREMENTS[name.split("://")[0]]
            raise TypeError(f"{name} is not {requirement} (native type {native.type}, "
                            f"array: {native.is_array}); {type(self).__name__} requires "
                            f"{requirement}")

    async def execute(self) -> None:
        await self.context.put_async(self.source(""), self._execute_value, wait=True,
                                     timeout=None)


class PvflowPvaCommandBackend(PvflowCommandBackend):
    """:class:`PvflowCommandBackend` for PV names without a scheme that are pvAccess: what
    ophyd-async builds for ``pva://`` names and for PVI-discovered commands."""

    protocol = "pva"
