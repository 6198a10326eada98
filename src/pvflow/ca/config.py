"""CA client settings from the standard EPICS environment variables (transport layer).

Read once when a Context starts, from ``os.environ`` or a mapping the caller passes, so tests
and embedded uses can configure a Context without touching the process environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..io.environment import number, search_addresses
from .protocol import DEFAULT_REPEATER_PORT, DEFAULT_SERVER_PORT

DEFAULT_MAX_PAYLOAD = 1 << 30  # with no EPICS_CA_MAX_ARRAY_BYTES: still refuse absurd headers
@dataclass(frozen=True)
class CAConfig:
    addresses: tuple[tuple[str, int], ...]
    name_servers: tuple[tuple[str, int], ...]
    server_port: int
    repeater_port: int
    connection_timeout: float
    max_payload: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CAConfig:
        env = os.environ if env is None else env
        server_port = int(number(env, "EPICS_CA_SERVER_PORT", DEFAULT_SERVER_PORT))
        repeater_port = int(number(env, "EPICS_CA_REPEATER_PORT", DEFAULT_REPEATER_PORT))
        addresses, name_servers = search_addresses(env, "CA", server_port, server_port)
        max_bytes = int(number(env, "EPICS_CA_MAX_ARRAY_BYTES", DEFAULT_MAX_PAYLOAD))
        return cls(
            addresses=addresses,
            name_servers=name_servers,
            server_port=server_port,
            repeater_port=repeater_port,
            connection_timeout=number(env, "EPICS_CA_CONN_TMO", 30.0),
            # a DBR_CTRL header plus padding rides on top of the array bytes
            max_payload=max(max_bytes, 16384) + 512,
        )
