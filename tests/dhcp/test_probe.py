"""The rogue-server probe: silence on a clean lab network, a clear refusal when a server answers."""

from __future__ import annotations

import pytest

from framework.dhcp.kea import KeaDhcpServer
from framework.dhcp.probe import RogueDhcpServerError, probe_dhcp_servers, refuse_rogue_servers
from framework.dhcp.server import DhcpServer
from framework.dhcp.settings import ServerSettings
from framework.netns import TestNetwork, interface_mac

pytestmark = pytest.mark.netns
NETNS_PREFIX = "hilt-dp"
ROGUE_IP = "192.0.2.66"


def _lab_mac(net: TestNetwork) -> str:
    with net.lab.entered():
        return interface_mac("br0")


def test_a_quiet_lab_network_has_no_dhcp_server(net: TestNetwork) -> None:
    assert probe_dhcp_servers("br0", netns=net.lab.name, timeout=0.3) == []
    refuse_rogue_servers("br0", netns=net.lab.name, timeout=0.3)


def test_a_server_we_did_not_start_is_found_and_named(net: TestNetwork) -> None:
    """Kea on a phone port stands in for the office server that must not be there."""
    rogue = net.client(0)
    rogue.ip("addr", "add", f"{ROGUE_IP}/24", "dev", "eth0")
    with KeaDhcpServer(ServerSettings.build("eth0", ROGUE_IP, pool=("192.0.2.150", "192.0.2.160"),
                                            allowlist=[_lab_mac(net)], netns=rogue.name)) as kea:
        kea.set_options(_lab_mac(net), {66: b"rogue.example"})
        seen = probe_dhcp_servers("br0", netns=net.lab.name, timeout=0.5)

        assert len(seen) == 1
        (answer,) = seen
        assert answer.server_id == ROGUE_IP and answer.source_ip == ROGUE_IP
        assert answer.source_mac == net.client_mac(0)
        assert answer.message_type == "OFFER" and answer.offered_address.startswith("192.0.2.15")
        assert answer.options[66] == b"rogue.example"
        with pytest.raises(RogueDhcpServerError, match=rf"another DHCP server answers on br0 \(netns {net.lab.name}\): "
                                                       rf"OFFER from {ROGUE_IP} \({net.client_mac(0)}, {ROGUE_IP}\)"):
            refuse_rogue_servers("br0", netns=net.lab.name, timeout=0.5)
        assert kea.leases() == {}, "the probe must never take a lease"


def test_probe_can_ask_as_a_phone_mac_and_sees_every_server(net: TestNetwork) -> None:
    """Two servers answering a phone's MAC: both are reported."""
    phone = "00:90:8f:0d:00:01"
    servers = []
    for i, ip in enumerate(("192.0.2.66", "192.0.2.67")):
        net.client(i).ip("addr", "add", f"{ip}/24", "dev", "eth0")
        settings = ServerSettings.build("eth0", ip, pool=(f"192.0.2.{170 + 10 * i}", f"192.0.2.{175 + 10 * i}"),
                                        allowlist=[phone], netns=net.client(i).name)
        servers.append(DhcpServer(settings).start())
    try:
        seen = probe_dhcp_servers("br0", netns=net.lab.name, timeout=0.5, mac=phone)
    finally:
        for server in servers:
            server.stop()
    assert sorted(s.server_id or "" for s in seen) == ["192.0.2.66", "192.0.2.67"]
