"""Both DHCP backends (our scapy server and ISC Kea) against real clients on a virtual wire.

BusyBox udhcpc (what the 3.x phones run) and ISC dhclient obtain leases in client
namespaces; every assertion is about what a phone would get: the option bytes, its
address, whether it gets an answer at all, renewals and NAKs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest

from framework.dhcp import DhcpBackend
from framework.dhcp.options import encode_vendor_suboptions
from framework.dhcp.packet import DhcpConfigError
from framework.dhcp.transcript import DhcpWaitTimeout
from framework.netns import TestNetwork
from tests.dhcp.conftest import ALLOWED, FIXED, LAB_IP, PHONE_MACS, STRANGER
from tests.dhcp.wire_clients import Dhclient, Udhcpc, icmp_unreachables_sent

pytestmark = pytest.mark.netns
NETNS_PREFIX = "hilt-db"

# A 256-byte Option 160 ending in a NUL: over 255 bytes, so it travels as two RFC 3396
# instances, yet the reply still fits the ~656 bytes BusyBox udhcpc accepts even from Kea
# (which cannot overload); the NUL must arrive, not be stripped.
LONG_160 = b"http://192.0.2.1/fw/" + b"d" * 215 + b"/440HD.img;<MAC>.cfg\x00"
VENDOR_43 = encode_vendor_suboptions({1: b"http://192.0.2.1/43", 2: b"\x00\x01"})


def test_udhcpc_gets_options_66_67_160_43_exactly_as_set(
        dhcp: DhcpBackend, udhcpc: Callable[..., Udhcpc]) -> None:
    """Manual 10.2.2: the phone reads 160, 66/67 and 43; each must arrive byte for byte."""
    mac = PHONE_MACS[1]
    assert len(LONG_160) > 255
    dhcp.set_options(mac, {66: b"192.0.2.1", 67: b"a.img;b.cfg", 160: LONG_160, 43: VENDOR_43})

    bound = udhcpc(1).obtain()

    assert bound is not None, "udhcpc got no lease"
    env = bound.env
    assert bytes.fromhex(env["opt160"]) == LONG_160
    assert bytes.fromhex(env["opt43"]) == VENDOR_43
    assert env["tftp"] == "192.0.2.1"
    assert env["bootfile"] == "a.img;b.cfg"
    assert dhcp.leases()[mac] == env["ip"]
    assert dhcp.mac_for_ip(env["ip"]) == mac
    discover = next(r for r in dhcp.transcript(mac) if r.message_type == "DISCOVER")
    assert {66, 67, 43, 160} <= set(discover.parameter_list)
    ack = dhcp.wait_for(mac, "ACK", since=0, timeout=2)  # recorded as it goes out
    assert ack.options[160] == LONG_160 and ack.options[43] == VENDOR_43


def test_dhclient_gets_long_option_160_and_present_but_empty_67(
        dhcp: DhcpBackend, dhclient: Callable[[int], Dhclient], backend_name: str) -> None:
    """An empty Option 67 is not an absent one (Table 10-2 rows differ); Kea cannot send it."""
    mac = PHONE_MACS[1]
    long_160 = b"https://192.0.2.1/" + b"p" * 290 + b";" + b"c" * 20 + b".cfg"
    options = {66: b"http://192.0.2.1", 160: long_160, 43: b"http://192.0.2.1/plain-url-in-43"}
    if backend_name == "kea":
        with pytest.raises(DhcpConfigError, match=r"option set for 00:90:8f:0d:00:02: .*code: 67"):
            dhcp.set_options(mac, {**options, 67: b""})
    else:
        options[67] = b""
    dhcp.set_options(mac, options)
    client = dhclient(1)

    bound = client.obtain()

    assert bound is not None, "dhclient got no lease"
    got = client.lease_options()
    assert got["hil-160"] == long_160
    assert got["hil-66"] == b"http://192.0.2.1"
    assert got["hil-43"] == b"http://192.0.2.1/plain-url-in-43"
    if backend_name == "scapy":
        assert got["hil-67"] == b"", "present-but-empty option 67 did not arrive as such"
    else:
        assert "hil-67" not in got
    assert dhcp.leases()[mac] == bound.env["new_ip_address"]


def test_a_mac_not_on_the_allowlist_gets_no_reply(
        dhcp: DhcpBackend, udhcpc: Callable[..., Udhcpc]) -> None:
    """ARCHITECTURE.md Safety: only the rig's MACs are answered; others are logged."""
    assert udhcpc(2).obtain(tries=1, pause=1) is None

    seen = dhcp.transcript(STRANGER)
    assert seen, "the stranger's DISCOVER was not even recorded"
    assert all(r.direction == "received" and r.ignored for r in seen)
    assert "allowlist" in seen[0].note
    assert STRANGER not in dhcp.leases()

    dhcp.allow(STRANGER)
    assert udhcpc(2).obtain() is not None, "allow() did not let the MAC in"


def test_disallow_and_the_ignore_knob_silence_a_phone(
        dhcp: DhcpBackend, udhcpc: Callable[..., Udhcpc]) -> None:
    mac = PHONE_MACS[1]
    dhcp.ignore(mac)
    assert udhcpc(1).obtain(tries=1) is None
    assert all(r.ignored for r in dhcp.transcript(mac))
    dhcp.ignore(mac, enabled=False)
    dhcp.disallow(mac)
    assert udhcpc(1).obtain(tries=1) is None
    dhcp.allow(mac)
    assert udhcpc(1).obtain() is not None


def test_fixed_address_per_mac(dhcp: DhcpBackend, udhcpc: Callable[..., Udhcpc]) -> None:
    mac = PHONE_MACS[0]
    bound = udhcpc(0).obtain()
    assert bound is not None and bound.env["ip"] == FIXED[mac]
    assert dhcp.leases()[mac] == FIXED[mac]
    assert dhcp.mac_for_ip(FIXED[mac]) == mac


def test_renewal_is_unicast_acked_and_draws_no_icmp_error(
        dhcp: DhcpBackend, udhcpc: Callable[..., Udhcpc], net: TestNetwork) -> None:
    """RFC 2131 4.4.5: RENEWING goes unicast to the server's UDP 67; it must be answered."""
    mac = PHONE_MACS[0]
    client = udhcpc(0)
    client.start()
    bound = client.script.wait({"bound"}, timeout=10)
    icmp_before = icmp_unreachables_sent(net.lab)
    since = time.time()

    client.renew()
    renewed = client.script.wait({"renew"}, timeout=10)

    request = dhcp.wait_for(mac, "REQUEST", since=since, timeout=5)
    assert request.ciaddr == bound.env["ip"] == renewed.env["ip"]
    assert request.destination == LAB_IP, "the renewal was not unicast to the server"
    ack = dhcp.wait_for(mac, "ACK", since=since, timeout=5)
    assert ack.destination == bound.env["ip"]
    assert icmp_unreachables_sent(net.lab) == icmp_before, "the lab answered UDP 67 with ICMP"


def test_nak_on_a_request_for_a_wrong_address_then_the_client_gets_its_own(
        dhcp: DhcpBackend, dhclient: Callable[[int], Dhclient]) -> None:
    """RFC 2131 4.3.2: INIT-REBOOT for an address that is not the client's gets a NAK."""
    mac = PHONE_MACS[1]
    client = dhclient(1)
    client.leases.write_text(
        'lease {\n  interface "eth0";\n  fixed-address 192.0.2.50;\n'
        "  option subnet-mask 255.255.255.0;\n  option dhcp-server-identifier 192.0.2.1;\n"
        "  renew 4 2037/01/01 00:00:00;\n  rebind 4 2037/01/01 00:00:00;\n"
        "  expire 4 2037/01/01 00:00:00;\n}\n")
    since = time.time()

    bound = client.obtain()

    assert bound is not None and bound.name == "BOUND", "dhclient got no lease after the NAK"
    request = dhcp.wait_for(mac, "REQUEST", since=since, timeout=1)
    assert request.requested_address == "192.0.2.50" and request.server_id is None
    dhcp.wait_for(mac, "NAK", since=since, timeout=1)
    assert bound.env["new_ip_address"] != "192.0.2.50"
    assert dhcp.leases()[mac] == bound.env["new_ip_address"]


def test_wait_for_wakes_on_the_discover_and_times_out_naming_what_it_awaited(
        dhcp: DhcpBackend, udhcpc: Callable[..., Udhcpc]) -> None:
    mac = PHONE_MACS[1]
    since = time.time()
    result: list[object] = []
    waiter = threading.Thread(target=lambda: result.append(
        dhcp.wait_for(mac, "DISCOVER", since=since, timeout=10)))
    waiter.start()
    assert udhcpc(1).obtain() is not None
    waiter.join(10)
    record = result[0]
    assert getattr(record, "message_type", None) == "DISCOVER" and getattr(record, "mac", None) == mac

    with pytest.raises(DhcpWaitTimeout, match=r"no DHCP INFORM for 00:90:8f:0d:00:02 within 0.2 s"):
        dhcp.wait_for(mac.upper(), "INFORM", since=since, timeout=0.2)
    with pytest.raises(TimeoutError):  # a TimeoutError for callers that do not know ours
        dhcp.wait_for(PHONE_MACS[0], "DISCOVER", since=time.time(), timeout=0.05)


def test_set_options_takes_effect_on_the_next_reply_and_clear_removes_them(
        dhcp: DhcpBackend, udhcpc: Callable[..., Udhcpc]) -> None:
    mac = PHONE_MACS[1]
    dhcp.set_options(mac, {160: b"tftp://192.0.2.1/first.img"})
    first = udhcpc(1).obtain()
    dhcp.set_options(mac, {66: b"192.0.2.1"})
    second = udhcpc(1).obtain()
    dhcp.clear(mac)
    third = udhcpc(1).obtain()

    assert first is not None and second is not None and third is not None
    assert bytes.fromhex(first.env["opt160"]) == b"tftp://192.0.2.1/first.img"
    assert "opt160" not in second.env and second.env["tftp"] == "192.0.2.1"
    assert "opt160" not in third.env and "tftp" not in third.env


def test_transcript_exports_as_json_evidence(dhcp: DhcpBackend, udhcpc: Callable[..., Udhcpc],
                                            tmp_path: pytest.TempPathFactory) -> None:
    mac = PHONE_MACS[1]
    dhcp.set_options(mac, {160: b"http://192.0.2.1/;<MAC>.cfg"})
    events: list[str] = []
    unsubscribe = dhcp.subscribe(lambda record: events.append(record.message_type))
    assert udhcpc(1, extra=["-V", "440HD", "-x", "hostname:ph2"]).obtain() is not None
    dhcp.wait_for(mac, "ACK", since=0, timeout=2)  # recorded as it goes out
    unsubscribe()
    path = tmp_path / "dhcp.json"  # type: ignore[operator]

    text = dhcp.export_json(path, mac)

    data = json.loads(path.read_text())
    assert json.loads(text) == data
    kinds = [m["message_type"] for m in data["messages"]]
    assert kinds == ["DISCOVER", "OFFER", "REQUEST", "ACK"] == events
    discover = data["messages"][0]
    assert discover["vendor_class"] == "440HD" and discover["host_name"] == "ph2"
    assert discover["client_id"] == "01:" + mac
    ack = data["messages"][3]
    assert ack["options"]["160"]["text"] == "http://192.0.2.1/;<MAC>.cfg"
    assert data["server"]["allowlist"] == sorted(ALLOWED)
