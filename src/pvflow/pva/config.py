"""PVA client settings from the standard EPICS environment variables (transport layer).

Read once when a Context starts, from ``os.environ`` or a mapping the caller passes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..io.environment import number, search_addresses
from .protocol import DEFAULT_BROADCAST_PORT, DEFAULT_SERVER_PORT


@dataclass(frozen=True)
class PVAConfig:
    addresses: tuple[tuple[str, int], ...]
    name_servers: tuple[tuple[str, int], ...]
    server_port: int
    broadcast_port: int
    connection_timeout: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PVAConfig:
        env = os.environ if env is None else env
        server_port = int(number(env, "EPICS_PVA_SERVER_PORT", DEFAULT_SERVER_PORT))
        broadcast_port = int(number(env, "EPICS_PVA_BROADCAST_PORT", DEFAULT_BROADCAST_PORT))
        addresses, name_servers = search_addresses(env, "PVA", broadcast_port, server_port)
        return cls(
            addresses=addresses,
            name_servers=name_servers,
            server_port=server_port,
            broadcast_port=broadcast_port,
            # pvxs: EPICS_PVA_CONN_TMO, 30 s by default, echoes at a fraction of it
            connection_timeout=number(env, "EPICS_PVA_CONN_TMO", 30.0),
        )
