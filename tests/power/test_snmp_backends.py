"""APC PowerNet and PoE (RFC 3621) backends against net-snmp snmpd in a namespace.

What the PDU was told is read back two independent ways: the agent's table (what snmpd
handed to its pass_persist handler) and net-snmp's own ``snmpget``.
"""

from __future__ import annotations

import time

import pytest

from framework.power import PowerError, power_switch
from framework.rig.model import ApcSnmpPdu, PoeSnmpPdu
from tests.power.conftest import COMMUNITY, COMMUNITY_VAR
from tests.power.snmp_peer import APC_BASE, POE_BASE, SnmpPeer

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("in_lab")]


def apc(**extra: object) -> ApcSnmpPdu:
    spec = {"name": "apc1", "driver": "apc-snmp", "host": "192.0.2.250",
            "community": {"env": COMMUNITY_VAR}, "outlets": 8, "timeout_s": 1.0,
            "retries": 2, **extra}
    return ApcSnmpPdu.model_validate(spec)


def poe(**extra: object) -> PoeSnmpPdu:
    spec = {"name": "sw1", "driver": "poe-snmp", "host": "192.0.2.250",
            "community": {"env": COMMUNITY_VAR}, "outlets": 4, "group": 1, "timeout_s": 1.0,
            "retries": 2, **extra}
    return PoeSnmpPdu.model_validate(spec)


def test_apc_off_on_reaches_the_outlet_table(snmp_peer: SnmpPeer) -> None:
    switch = power_switch(apc(), 3)
    switch.off()
    assert snmp_peer.snmpget(f"{APC_BASE}.3") == "2"  # outletOff, seen by net-snmp
    assert switch.state() is False
    switch.on()
    assert snmp_peer.table("apc")["3"] == 1
    assert switch.state() is True
    assert snmp_peer.table("apc")["2"] == 1, "a neighbouring outlet was touched"


def test_apc_cycle_turns_off_then_on_and_holds_off(snmp_peer: SnmpPeer) -> None:
    before = len(snmp_peer.sets("apc"))
    started = time.monotonic()
    power_switch(apc(), 5).cycle(off_time=0.2)
    assert time.monotonic() - started >= 0.2
    assert snmp_peer.sets("apc")[before:] == [("5", 2), ("5", 1)]


def test_apc_snmp_v1_works_too(snmp_peer: SnmpPeer) -> None:
    power_switch(apc(snmp_version="1"), 4).off()
    assert snmp_peer.table("apc")["4"] == 2
    power_switch(apc(snmp_version="1"), 4).on()


def test_apc_missing_outlet_fails_at_once_naming_it(snmp_peer: SnmpPeer) -> None:
    spec = apc(outlets=24)  # the rig claims more outlets than the PDU has
    with pytest.raises(PowerError) as err:
        power_switch(spec, 12).state()
    assert err.value.attempts == 1  # the agent answered: retrying cannot help
    assert str(err.value) == (
        f"PDU apc1 (apc-snmp 192.0.2.250:161) outlet 12: state failed after 1 attempt: "
        f"SNMP GET {APC_BASE}.12: no such outlet on this agent "
        f"(No Such Instance currently exists at this OID)")


def test_wrong_community_retries_then_names_everything_but_the_secret(
        snmp_peer: SnmpPeer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(COMMUNITY_VAR, "not-the-community")
    with pytest.raises(PowerError) as err:
        power_switch(apc(retries=2, timeout_s=0.2), 1).off()
    message = str(err.value)
    assert (err.value.pdu, err.value.outlet, err.value.operation, err.value.attempts) == \
        ("apc1", 1, "off", 3)
    assert message.startswith("PDU apc1 (apc-snmp 192.0.2.250:161) outlet 1: off failed "
                              "after 3 attempts: SNMP SET")
    assert "wrong community" in message and "timeout 0.2 s per attempt" in message
    assert "not-the-community" not in message and COMMUNITY not in message
    assert snmp_peer.table("apc")["1"] == 1


def test_unreachable_pdu_reports_timeout_per_attempt() -> None:
    spec = apc(host="192.0.2.249", retries=1, timeout_s=0.2)
    started = time.monotonic()
    with pytest.raises(PowerError, match=r"on failed after 2 attempts: .*No SNMP response"):
        power_switch(spec, 1).on()
    assert time.monotonic() - started < 2.0


def test_poe_port_admin_enable(snmp_peer: SnmpPeer) -> None:
    switch = power_switch(poe(), 3)
    switch.off()
    assert snmp_peer.snmpget(f"{POE_BASE}.1.3") == "2"  # false(2): no power on port 3
    assert switch.state() is False
    switch.cycle(off_time=0.05)
    assert snmp_peer.snmpget(f"{POE_BASE}.1.3") == "1"
    assert switch.state() is True
    assert snmp_peer.table("poe")["1.2"] == 1


def test_poe_wrong_group_is_reported(snmp_peer: SnmpPeer) -> None:
    with pytest.raises(PowerError, match=rf"SNMP SET {POE_BASE}\.2\.1: agent answered"):
        power_switch(poe(group=2), 1).off()


def test_outlet_outside_the_rig_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"PDU apc1 has outlets 1\.\.8, not 9"):
        power_switch(apc(), 9)
