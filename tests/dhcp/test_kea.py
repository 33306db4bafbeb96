"""The Kea backend: what is specific to driving a server we did not write."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from framework.dhcp.kea import KeaDhcpServer
from framework.dhcp.packet import DhcpConfigError, DhcpServerError
from framework.dhcp.settings import ServerSettings
from framework.netns import TestNetwork
from tests.dhcp.conftest import LAB_IP, PHONE_MACS, backend_settings
from tests.dhcp.wire_clients import Udhcpc

pytestmark = pytest.mark.netns
NETNS_PREFIX = "hilt-dk"


def test_a_refused_option_set_leaves_kea_serving_the_previous_one(
        net: TestNetwork, udhcpc: Callable[..., Udhcpc]) -> None:
    """Kea 2.2 stops serving after a failed config-set; we must test before we set."""
    mac = PHONE_MACS[1]
    with KeaDhcpServer(backend_settings(net)) as kea:
        kea.set_options(mac, {160: b"http://192.0.2.1/good.cfg"})
        with pytest.raises(DhcpConfigError, match=r"option set for 00:90:8f:0d:00:02: Kea refused "
                                                  r"the configuration: .*code: 66"):
            kea.set_options(mac, {66: b"", 160: b"http://192.0.2.1/never.cfg"})

        bound = udhcpc(1).obtain()

        assert bound is not None, "Kea stopped serving after a refused option set"
        assert bytes.fromhex(bound.env["opt160"]) == b"http://192.0.2.1/good.cfg"
        evidence = json.loads(kea.export_json(None, mac))
        assert evidence["server"]["backend"] == "kea"
        assert evidence["server"]["option_sets"][mac] == {"160": b"http://192.0.2.1/good.cfg".hex()}


def test_an_empty_allowlist_answers_nobody(net: TestNetwork, udhcpc: Callable[..., Udhcpc]) -> None:
    with KeaDhcpServer(backend_settings(net, allowlist=[])) as kea:
        assert udhcpc(0).obtain(tries=1) is None
        assert kea.transcript() and all(r.ignored for r in kea.transcript())
        assert kea.leases() == {}


class _KeaWithABadKey(KeaDhcpServer):
    """Kea given a configuration it rejects at start (what a Kea upgrade could do)."""

    def _config(self) -> dict[str, Any]:
        config = super()._config()
        config["Dhcp4"]["valid-lifetime"] = "ten minutes"
        return config


def test_start_reports_keas_own_error_or_the_missing_pieces(net: TestNetwork) -> None:
    with pytest.raises(DhcpServerError, match=r"Kea on br0 \(netns hilt-dk-lab\) exited: DHCP4_CONFIG_LOAD_FAIL .*expecting integer"):
        _KeaWithABadKey(ServerSettings.build("br0", LAB_IP, netns=net.lab.name)).start()
    with pytest.raises(DhcpServerError, match=r"cannot capture DHCP on br9 \(netns hilt-dk-lab\): Interface 'br9' not found"):
        KeaDhcpServer(ServerSettings.build("br9", LAB_IP, netns=net.lab.name)).start()
    with pytest.raises(DhcpServerError, match=r"kea-dhcp4-missing not found: install Debian package kea-dhcp4-server"):
        KeaDhcpServer(ServerSettings.build("br0", LAB_IP, netns=net.lab.name),
                      kea_binary="kea-dhcp4-missing").start()
