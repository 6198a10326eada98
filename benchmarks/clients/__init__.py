"""The client adapters, by the key used on the command line and in the report.

Adapters are imported only inside their own worker process: importing two libca-based clients
into one process would make them share (and fight over) one CA context.
"""

from __future__ import annotations

import importlib

from .base import AsyncClientAdapter, ClientAdapter

REFERENCE = "epicsrs-ca"

# key: (module in this package, class name, column heading)
CLIENTS: dict[str, tuple[str, str, str]] = {
    "epicsrs-ca": ("epicsrs_client", "EpicsRsCaAdapter", "epicsrs CA"),
    "pvflow": ("pvflow_client", "PvflowAdapter", "pvflow"),
    "epicsrs-pva": ("epicsrs_client", "EpicsRsPvaAdapter", "epicsrs PVA"),
    "pvflow-pva": ("pvflow_pva_client", "PvflowPvaAdapter", "pvflow PVA"),
    "pyepics": ("pyepics_client", "PyepicsAdapter", "pyepics"),
    "aioca": ("aioca_client", "AiocaAdapter", "aioca"),
    "caproto": ("caproto_client", "CaprotoAdapter", "caproto thread"),
    "p4p": ("p4p_client", "P4pAdapter", "p4p thread"),
    "floor-ca": ("floor_ca", "FloorCaAdapter", "CA floor"),
    "floor-pva": ("floor_pva", "FloorPvaAdapter", "PVA floor"),
}


def load(key: str) -> ClientAdapter:
    """Import one adapter module and build its adapter."""
    module_name, class_name, _ = CLIENTS[key]
    module = importlib.import_module(f"{__name__}.{module_name}")
    adapter: ClientAdapter = getattr(module, class_name)()
    return adapter


__all__ = ["AsyncClientAdapter", "CLIENTS", "ClientAdapter", "REFERENCE", "load"]
