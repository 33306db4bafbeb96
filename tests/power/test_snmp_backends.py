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
from tests.power.snmp_peer import (
    APC_BASE,
    POE_BASE,
    RPDU_BASE,
    V3_AUTH_KEY,
    V3_AUTH_ONLY_USER,
    V3_PRIV_KEY,
    V3_USER,
    SnmpPeer,
)

AUTH_VAR, PRIV_VAR = "HILT_R_PDU_V3_AUTH", "HILT_R_PDU_V3_PRIV"

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
    # A SET whose answer is later than timeout_s (net-snmp under CI load) is sent again:
    # the agent may see it twice. Retrying an absolute SET is harmless; the order is not.
    sets = snmp_peer.sets("apc")[before:]
    assert [s for i, s in enumerate(sets) if i == 0 or s != sets[i - 1]] == [("5", 2), ("5", 1)]


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


# --- AP89xx (PowerNet-MIB rPDU outlet group) and SNMPv3 ---------------------------------

def apc_v3(monkeypatch: pytest.MonkeyPatch, *, user: str = V3_USER, priv: bool = True,
           auth_key: str = V3_AUTH_KEY, **extra: object) -> ApcSnmpPdu:
    monkeypatch.setenv(AUTH_VAR, auth_key)
    monkeypatch.setenv(PRIV_VAR, V3_PRIV_KEY)
    v3: dict[str, object] = {"user": user, "auth_protocol": "SHA" if priv else "MD5",
                             "auth_key": {"env": AUTH_VAR}}
    if priv:
        v3.update(priv_protocol="AES", priv_key={"env": PRIV_VAR})
    spec = {"name": "apc1", "driver": "apc-snmp", "host": "192.0.2.250", "outlets": 8,
            "snmp_version": "3", "v3": v3, "timeout_s": 1.0, "retries": 1, **extra}
    return ApcSnmpPdu.model_validate(spec)


def test_ap89xx_commands_the_outlet_and_reads_its_status(snmp_peer: SnmpPeer) -> None:
    switch = power_switch(apc(model="ap89xx"), 6)
    switch.off()
    # rPDUOutletStatusOutletState.6, read by net-snmp: outletStatusOff(2)
    assert snmp_peer.snmpget(f"{RPDU_BASE}.5.1.1.4.6") == "2"
    assert switch.state() is False
    switch.cycle(off_time=0.05)
    assert snmp_peer.sets("rpdu")[-3:] == [("3.1.1.4.6", 2), ("3.1.1.4.6", 2),
                                           ("3.1.1.4.6", 1)]
    assert switch.state() is True and snmp_peer.table("rpdu")["5.1.1.4.6"] == 1
    assert snmp_peer.table("apc")["6"] == 1, "the AP79xx column was used"
    assert snmp_peer.table("rpdu")["3.1.1.4.5"] == 1, "a neighbouring outlet was touched"


def test_ap89xx_missing_outlet_names_the_status_oid(snmp_peer: SnmpPeer) -> None:
    with pytest.raises(PowerError, match=rf"SNMP GET {RPDU_BASE}\.5\.1\.1\.4\.12: no such "):
        power_switch(apc(model="ap89xx", outlets=24), 12).state()


def test_snmpv3_auth_priv_user(snmp_peer: SnmpPeer, monkeypatch: pytest.MonkeyPatch) -> None:
    switch = power_switch(apc_v3(monkeypatch, model="ap89xx"), 7)
    switch.off()
    assert snmp_peer.snmpget(f"{RPDU_BASE}.5.1.1.4.7", v3=True) == "2"
    assert switch.state() is False
    switch.on()
    assert snmp_peer.table("rpdu")["5.1.1.4.7"] == 1


def test_snmpv3_auth_only_user_on_ap79xx(snmp_peer: SnmpPeer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    switch = power_switch(apc_v3(monkeypatch, user=V3_AUTH_ONLY_USER, priv=False), 8)
    switch.off()
    assert snmp_peer.table("apc")["8"] == 2
    switch.on()
    assert switch.state() is True


def test_snmpv3_wrong_key_fails_without_showing_it(snmp_peer: SnmpPeer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PowerError) as err:
        power_switch(apc_v3(monkeypatch, auth_key="not-the-auth-key", timeout_s=0.3), 1).off()
    message = str(err.value)
    assert message.startswith("PDU apc1 (apc-snmp 192.0.2.250:161) outlet 1: off failed")
    assert "not-the-auth-key" not in message and V3_AUTH_KEY not in message
    assert snmp_peer.table("apc")["1"] == 1


@pytest.mark.parametrize(("extra", "reason"), [
    ({"snmp_version": "3"}, "snmp_version 3 needs v3"),
    ({"community": None}, "snmp_version 2c needs community"),
    ({"snmp_version": "3", "v3": {"user": "u", "priv_key": {"env": "X"}}},
     "priv_key needs auth_key"),
    ({"model": "ap99xx"}, "ap79xx"),
])
def test_snmp_credentials_are_checked_on_load(extra: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        apc(**extra)
