"""The backend contract: both backends satisfy it, and a wrong name is a clear error."""

from __future__ import annotations

import pytest

from framework.dhcp import BACKENDS, DhcpBackend, create_backend
from framework.dhcp.settings import ServerSettings


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_registered_backend_satisfies_the_contract(name: str) -> None:
    backend = create_backend(name, ServerSettings.build("br0", "192.0.2.1", allowlist=["00:90:8f:00:00:01"]))
    assert isinstance(backend, DhcpBackend)


def test_an_unknown_backend_name_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"DHCP backend 'dnsmasq': expected one of kea, scapy"):
        create_backend("dnsmasq", ServerSettings.build("br0", "192.0.2.1"))


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_a_backend_takes_the_settings_object_not_loose_values(name: str) -> None:
    with pytest.raises(TypeError, match=r"takes a ServerSettings \(ServerSettings.build\(...\)\), not str"):
        create_backend(name, "br0")  # type: ignore[arg-type]
