"""Power-backend test peers: snmpd in a namespace, a pdudaemon-like HTTP listener."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from framework.netns import TestNetwork, have_privileges
from tests.power.snmp_peer import SnmpPeer, snmpd

COMMUNITY_VAR = "HILT_R_PDU_COMMUNITY"
COMMUNITY = "rw-Lab-7f3a"


@pytest.fixture(scope="module")
def pdu_net() -> Iterator[TestNetwork]:
    """``hilt-rp-lab`` (framework side, 192.0.2.1) and ``hilt-rp-c0`` (the PDU, .250)."""
    ok, why = have_privileges()
    if not ok:
        pytest.skip(why)
    with TestNetwork("hilt-rp", clients=1) as net:
        net.client(0).ip("addr", "add", "192.0.2.250/24", "dev", "eth0")
        yield net


@pytest.fixture(scope="module")
def snmp_peer(pdu_net: TestNetwork, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[SnmpPeer]:
    workdir: Path = tmp_path_factory.mktemp("snmpd")
    with snmpd(pdu_net.client(0), "192.0.2.250", 161, COMMUNITY, workdir) as peer:
        yield peer


@pytest.fixture
def in_lab(pdu_net: TestNetwork, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run the test body in ``hilt-rp-lab``, with the community secret in the environment."""
    monkeypatch.setenv(COMMUNITY_VAR, COMMUNITY)
    with pdu_net.lab.entered():
        yield
