"""pvflow's own client over pvAccess: ``pvflow.Context`` with ``pva://`` names.

The same records as the other PVA adapters (p4p, epicsrs PVA) read through qsrv; only the
prefix differs, which is how a pvflow user picks the protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import Closer, MonitorCallback
from .pvflow_client import PvflowAdapter


def _pva(name: str) -> str:
    return f"pva://{name}"


class PvflowPvaAdapter(PvflowAdapter):
    protocol = "pva"

    def connect(self, names: Sequence[str]) -> None:
        super().connect([_pva(name) for name in names])

    def get(self, name: str) -> Any:
        return self.context.get(_pva(name))

    def get_many(self, names: Sequence[str]) -> Sequence[Any]:
        prefixed = [_pva(name) for name in names]
        values = self.context.get_many(prefixed)
        return [values[name] for name in prefixed]

    def put(self, name: str, value: float) -> None:
        self.context.put(_pva(name), value, wait=True)

    def subscribe(self, name: str, callback: MonitorCallback) -> Closer:
        return super().subscribe(_pva(name), callback)
