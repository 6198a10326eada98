"""CA settings from the EPICS variables: parsing, defaults, and errors that name the variable."""

from __future__ import annotations

import pytest

from pvflow.ca.config import CAConfig
from pvflow.io.environment import broadcast_addresses


def test_address_list_with_and_without_ports() -> None:
    config = CAConfig.from_env({"EPICS_CA_ADDR_LIST": "10.0.0.1 10.0.0.2:6000",
                                "EPICS_CA_AUTO_ADDR_LIST": "NO",
                                "EPICS_CA_SERVER_PORT": "5070"})
    assert config.addresses == (("10.0.0.1", 5070), ("10.0.0.2", 6000))
    assert config.server_port == 5070


def test_auto_address_list_adds_interface_broadcasts() -> None:
    config = CAConfig.from_env({"EPICS_CA_ADDR_LIST": "10.0.0.1"})
    broadcasts = [(address, 5064) for address in broadcast_addresses()]
    assert config.addresses == (("10.0.0.1", 5064), *broadcasts)
    assert broadcasts


def test_defaults() -> None:
    config = CAConfig.from_env({"EPICS_CA_AUTO_ADDR_LIST": "no"})
    assert config.addresses == () and config.name_servers == ()
    assert (config.server_port, config.repeater_port, config.connection_timeout) == (5064, 5065,
                                                                                     30.0)


@pytest.mark.parametrize("variable, value", [("EPICS_CA_CONN_TMO", "soon"),
                                             ("EPICS_CA_ADDR_LIST", "host:port"),
                                             ("EPICS_CA_NAME_SERVERS", "a:b:c"),
                                             ("EPICS_CA_MAX_ARRAY_BYTES", "lots")])
def test_bad_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=variable):
        CAConfig.from_env({variable: value})
