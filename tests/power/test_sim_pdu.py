"""The sim's APC PDU modelling an AP89xx (rPDU outlet group) and an SNMPv3 user, checked by
our client and by net-snmp's ``snmpget``/``snmpset`` (software we did not write)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from framework.netns import TestNetwork, have_privileges
from framework.power import power_switch
from framework.rig.model import ApcSnmpPdu
from framework.sim.pdu import ApcPduAgent, OutletBoard, UsmUser
from tests.rig.waiting import wait_until

pytestmark = pytest.mark.netns

COMMUNITY_VAR, COMMUNITY = "HILT_S_PDU_COMMUNITY", "rw-Sim-42c1"
RPDU = "1.3.6.1.4.1.318.1.1.12.3"
V3_PORT, V3 = 1161, UsmUser("hilt-sim", "SHA", "auth-Sim-0b1e7", "AES", "priv-Sim-77d3f")
AUTH_VAR, PRIV_VAR = "HILT_S_PDU_AUTH", "HILT_S_PDU_PRIV"


@pytest.fixture(scope="module")
def sim_pdu() -> Iterator[tuple[TestNetwork, list[tuple[int, bool]]]]:
    """The sim's agent (model ap89xx, 4 outlets, all on) on 192.0.2.250 in ``hilt-rs-c0``."""
    ok, why = have_privileges()
    if not ok:
        pytest.skip(why)
    switched: list[tuple[int, bool]] = []
    with TestNetwork("hilt-rs", clients=1) as net:
        net.client(0).ip("addr", "add", "192.0.2.250/24", "dev", "eth0")
        board = OutletBoard(4, {1: "ph1"}, switch=lambda n, on: switched.append((n, on)),
                            on_at_start=True, dead=(), reboot_delay_s=0.2)
        agent = ApcPduAgent(net.client(0), "192.0.2.250", 161, COMMUNITY, board,
                            model="ap89xx")
        v3_only = ApcPduAgent(net.client(0), "192.0.2.250", V3_PORT, None, board, usm=V3)
        agent.start()
        v3_only.start()
        try:
            yield net, switched
        finally:
            agent.stop()
            v3_only.stop()


def snmp(net: TestNetwork, tool: str, *args: str) -> str:
    proc = net.lab.run([tool, "-v2c", "-c", COMMUNITY, "-Oqv", "-t", "1", "-r", "0",
                        "192.0.2.250", *args], timeout=5)
    return (proc.stdout or proc.stderr).strip()


def test_ap89xx_sim_answers_net_snmp_and_our_client(
        sim_pdu: tuple[TestNetwork, list[tuple[int, bool]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    net, switched = sim_pdu
    monkeypatch.setenv(COMMUNITY_VAR, COMMUNITY)
    assert snmp(net, "snmpget", f"{RPDU}.5.1.1.2.1") == '"ph1"'  # rPDUOutletStatusOutletName
    assert snmp(net, "snmpset", f"{RPDU}.3.1.1.4.2", "i", "2") == "2"  # immediateOff
    assert snmp(net, "snmpget", f"{RPDU}.5.1.1.4.2") == "2"  # outletStatusOff
    assert (2, False) in switched
    assert "wrongValue" in snmp(net, "snmpset", f"{RPDU}.3.1.1.4.2", "i", "9")
    assert "notWritable" in snmp(net, "snmpset", f"{RPDU}.5.1.1.4.2", "i", "1") \
        or "noAccess" in snmp(net, "snmpset", f"{RPDU}.5.1.1.4.2", "i", "1")
    assert "No Such Object" in snmp(net, "snmpget", "1.3.6.1.4.1.318.1.1.4.4.2.1.3.1"), \
        "an AP89xx sim answered the AP79xx sPDUOutletCtl"
    pdu = ApcSnmpPdu.model_validate({
        "name": "apc1", "driver": "apc-snmp", "model": "ap89xx", "host": "192.0.2.250",
        "community": {"env": COMMUNITY_VAR}, "outlets": 4, "timeout_s": 1.0})
    with net.lab.entered():
        switch = power_switch(pdu, 3)
        assert switch.state() is True
        switch.off()
        assert switch.state() is False
        assert snmp(net, "snmpget", f"{RPDU}.5.1.1.4.3") == "2"
        switch.on()
        assert switch.state() is True
        before = len(switched)
        # immediateReboot: the answer is the outlet's state once the SET took effect (off)
        assert snmp(net, "snmpset", f"{RPDU}.3.1.1.4.3", "i", "3") in ("2", "3")
        wait_until(lambda: switched[before:] == [(3, False), (3, True)], 3,
                   "outlet 3 off, then on again after the reboot delay")
        assert switch.state() is True


def test_sim_pdu_with_an_snmpv3_user_only(
        sim_pdu: tuple[TestNetwork, list[tuple[int, bool]]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    net, _ = sim_pdu
    assert V3.auth_key and V3.priv_key
    v3 = ["-v3", "-l", "authPriv", "-u", V3.name, "-a", "SHA", "-A", V3.auth_key, "-x", "AES",
          "-X", V3.priv_key, "-Oqv", "-t", "1", "-r", "0", f"192.0.2.250:{V3_PORT}"]
    outlet = "1.3.6.1.4.1.318.1.1.4.4.2.1.3.4"  # sPDUOutletCtl.4 (model ap79xx)
    assert net.lab.run(["snmpset", *v3, outlet, "i", "2"], timeout=5).stdout.strip() == "2"
    proc = net.lab.run(["snmpget", "-v2c", "-c", COMMUNITY, "-Oqv", "-t", "1", "-r", "0",
                        f"192.0.2.250:{V3_PORT}", outlet], timeout=5)
    assert "Timeout" in proc.stdout + proc.stderr, "a v3-only PDU answered a community"
    monkeypatch.setenv(AUTH_VAR, V3.auth_key)
    monkeypatch.setenv(PRIV_VAR, V3.priv_key)
    pdu = ApcSnmpPdu.model_validate({
        "name": "apc3", "driver": "apc-snmp", "host": "192.0.2.250", "port": V3_PORT,
        "snmp_version": "3", "v3": {"user": V3.name, "auth_key": {"env": AUTH_VAR},
                                    "priv_key": {"env": PRIV_VAR}},
        "outlets": 4, "timeout_s": 1.0})
    with net.lab.entered():
        switch = power_switch(pdu, 4)
        assert switch.state() is False
        switch.on()
        assert switch.state() is True
    assert net.lab.run(["snmpget", *v3, outlet], timeout=5).stdout.strip() == "1"
