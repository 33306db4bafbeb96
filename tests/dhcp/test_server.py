"""Our scapy DHCP server: what only it does (overload, fault knobs) and the RFC 2131 corners.

Real clients (udhcpc, dhclient) where they can produce the situation; a crafted scapy
client (RawClient) only for messages no real client sends on demand.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator

import pytest

from framework.dhcp.options import encode_vendor_suboptions
from framework.dhcp.packet import BROADCAST_IP, DhcpConfigError, DhcpServerError
from framework.dhcp.server import DhcpServer
from framework.dhcp.settings import ServerSettings
from framework.netns import TestNetwork
from tests.dhcp.conftest import ALLOWED, FIXED, LAB_IP, PHONE_MACS, backend_settings
from tests.dhcp.wire_clients import Dhclient, RawClient, Udhcpc

NETNS_PREFIX = "hilt-ds"


@pytest.fixture
def server(net: TestNetwork) -> Iterator[DhcpServer]:
    with DhcpServer(backend_settings(net)) as srv:
        yield srv


def xid() -> int:
    return random.getrandbits(32)


# --- option overload: a 357-byte Option 160 for a client that accepts 576 bytes ------------

HUGE_160 = b"http://192.0.2.1/" + b"h" * 320 + b"/440HD.img;<MAC>.cfg"


@pytest.mark.netns
def test_a_357_byte_option_160_reaches_udhcpc_through_option_overload(
        server: DhcpServer, udhcpc: Callable[..., Udhcpc], raw_client: Callable[[int], RawClient]) -> None:
    """RFC 2131 4.1 / RFC 3396: options overflow into file/sname so the reply fits 576 bytes.

    BusyBox udhcpc drops larger replies, so without overload a phone running it would
    never see a long provisioning URL.
    """
    mac = PHONE_MACS[1]
    options = {66: b"192.0.2.1", 67: b"a.img;b.cfg", 160: HUGE_160, 43: encode_vendor_suboptions({1: b"x"})}
    server.set_options(mac, options)

    bound = udhcpc(1).obtain()

    assert bound is not None, "udhcpc got no lease"
    assert bytes.fromhex(bound.env["opt160"]) == HUGE_160
    assert bound.env["tftp"] == "192.0.2.1" and bound.env["bootfile"] == "a.img;b.cfg"
    ack = [r for r in server.transcript(mac) if r.message_type == "ACK"][-1]
    assert "overloaded" in ack.note
    # On the wire: option 52 present and the datagram within 576 bytes.
    client = raw_client(1)
    x = xid()
    client.send(x, {53: b"\x01", 55: bytes((66, 67, 160))}, chaddr=mac)
    (offer,) = client.replies(x, timeout=2)
    assert offer.message.options[52] in (b"\x01", b"\x03")
    assert offer.message.options[160] == HUGE_160


@pytest.mark.netns
def test_dhclient_reads_overloaded_options_too(server: DhcpServer,
                                              dhclient: Callable[[int], Dhclient]) -> None:
    mac = PHONE_MACS[1]
    server.set_options(mac, {160: HUGE_160, 67: b""})
    client = dhclient(1)
    assert client.obtain() is not None
    got = client.lease_options()
    assert got["hil-160"] == HUGE_160 and got["hil-67"] == b""


# --- fault knobs ---------------------------------------------------------------------------

@pytest.mark.netns
def test_delay_knob_holds_replies_back_and_the_client_still_binds(
        server: DhcpServer, udhcpc: Callable[..., Udhcpc]) -> None:
    mac = PHONE_MACS[1]
    server.delay(mac, 0.6)

    assert udhcpc(1).obtain(tries=2, pause=2) is not None

    log = server.transcript(mac)
    discover = next(r for r in log if r.message_type == "DISCOVER")
    offer = next(r for r in log if r.message_type == "OFFER")
    assert offer.time - discover.time >= 0.6
    server.reset_faults(mac)
    since = time.time()
    assert udhcpc(1).obtain() is not None
    fresh = [r for r in server.transcript(mac) if r.time >= since]
    assert fresh[1].time - fresh[0].time < 0.3


@pytest.mark.netns
def test_nak_knob_refuses_every_request_until_reset(
        server: DhcpServer, udhcpc: Callable[..., Udhcpc]) -> None:
    mac = PHONE_MACS[1]
    server.nak(mac)
    client = udhcpc(1)
    client.start()

    client.script.wait({"nak"}, timeout=10)
    client.stop()  # udhcpc pauses 3 s after a NAK; a fresh run is quicker
    naks = [r for r in server.transcript(mac) if r.message_type == "NAK"]
    assert naks and naks[0].destination == BROADCAST_IP
    assert naks[0].options[56] == b"fault knob: nak"
    assert mac not in server.leases()

    server.reset_faults()
    bound = udhcpc(1).obtain()
    assert bound is not None and server.leases()[mac] == bound.env["ip"]


# --- RFC 2131 corners, with a crafted client ------------------------------------------------

def _discover_and_offer(client: RawClient, mac: str) -> str:
    x = xid()
    client.send(x, {53: b"\x01"}, chaddr=mac)
    (offer,) = client.replies(x, timeout=2)
    assert offer.message.message_type == "OFFER"
    return offer.message.yiaddr


def _request(client: RawClient, mac: str, address: str) -> str:
    x = xid()
    client.send(x, {53: b"\x03", 50: bytes(map(int, address.split("."))), 54: bytes((192, 0, 2, 1))},
                chaddr=mac)
    (reply,) = client.replies(x, timeout=2)
    return reply.message.message_type


@pytest.mark.netns
def test_request_naming_another_server_gets_no_answer(server: DhcpServer,
                                                      raw_client: Callable[[int], RawClient]) -> None:
    """RFC 2131 4.3.2: the client chose another server; NAKing it would fight that server."""
    mac = PHONE_MACS[1]
    client = raw_client(1)
    offered = _discover_and_offer(client, mac)
    x = xid()
    client.send(x, {53: b"\x03", 50: bytes(map(int, offered.split("."))), 54: bytes((192, 0, 2, 9))},
                chaddr=mac)
    assert client.replies(x, timeout=0.3) == []
    request = server.wait_for(mac, "REQUEST", since=0, timeout=1)
    assert "another server" in request.note


@pytest.mark.netns
def test_request_for_an_address_not_offered_is_naked(server: DhcpServer,
                                                     raw_client: Callable[[int], RawClient]) -> None:
    mac = PHONE_MACS[1]
    client = raw_client(1)
    offered = _discover_and_offer(client, mac)
    wrong = "192.0.2.177" if offered != "192.0.2.177" else "192.0.2.178"
    assert _request(client, mac, wrong) == "NAK"
    assert _request(client, mac, offered) == "ACK"
    assert server.leases()[mac] == offered


@pytest.mark.netns
def test_rebinding_release_decline_and_inform(server: DhcpServer,
                                              raw_client: Callable[[int], RawClient]) -> None:
    mac = PHONE_MACS[1]
    client = raw_client(1)
    address = _discover_and_offer(client, mac)
    assert _request(client, mac, address) == "ACK"

    # REBINDING: broadcast, ciaddr set, no server id -> ACK unicast to ciaddr (RFC 2131 4.3.2)
    x = xid()
    client.send(x, {53: b"\x03"}, chaddr=mac, ciaddr=address, src_ip=address, flags=0)
    (ack,) = client.replies(x, timeout=2)
    assert ack.message.message_type == "ACK" and ack.dst_ip == address

    # INFORM: configuration without an address or lease time (RFC 2131 4.3.5)
    x = xid()
    client.send(x, {53: b"\x08"}, chaddr=mac, ciaddr=address, src_ip=address, flags=0)
    (inform_ack,) = client.replies(x, timeout=2)
    assert inform_ack.message.yiaddr == "0.0.0.0" and 51 not in inform_ack.message.options
    assert inform_ack.message.options[6] == bytes((192, 0, 2, 1))

    # RELEASE frees the lease; DECLINE makes the server offer another address next time
    client.send(xid(), {53: b"\x07", 54: bytes((192, 0, 2, 1))}, chaddr=mac, ciaddr=address,
                src_ip=address, dst_ip=LAB_IP, flags=0)
    server.wait_for(mac, "RELEASE", since=0, timeout=2)
    assert mac not in server.leases()
    client.send(xid(), {53: b"\x04", 50: bytes(map(int, address.split("."))),
                        54: bytes((192, 0, 2, 1))}, chaddr=mac)
    server.wait_for(mac, "DECLINE", since=0, timeout=2)
    assert _discover_and_offer(client, mac) != address


@pytest.mark.netns
def test_relayed_discover_is_answered_to_the_relay_and_client_id_is_echoed(
        server: DhcpServer, raw_client: Callable[[int], RawClient]) -> None:
    """RFC 2131 4.1: giaddr set -> reply to the relay at UDP 67; RFC 6842: echo option 61."""
    mac = PHONE_MACS[1]
    client = raw_client(1)
    x = xid()
    client_id = b"\x01" + bytes.fromhex(mac.replace(":", ""))
    client.send(x, {53: b"\x01", 61: client_id}, chaddr=mac, giaddr="192.0.2.254",
                src_ip="192.0.2.254", dst_ip=LAB_IP, flags=0)
    (offer,) = client.replies(x, timeout=2)
    assert offer.dst_ip == "192.0.2.254" and offer.dport == 67
    assert offer.message.options[61] == client_id


# --- robustness of the control surface -----------------------------------------------------

@pytest.mark.netns
def test_a_failing_subscriber_does_not_stop_the_server(server: DhcpServer,
                                                       raw_client: Callable[[int], RawClient]) -> None:
    def broken(record: object) -> None:
        raise RuntimeError("subscriber bug")

    server.subscribe(broken)
    client = raw_client(1)
    _discover_and_offer(client, PHONE_MACS[1])
    _discover_and_offer(client, PHONE_MACS[1])


@pytest.mark.netns
def test_export_json_records_settings_knobs_and_counters(server: DhcpServer, tmp_path: object,
                                                         raw_client: Callable[[int], RawClient]) -> None:
    server.ignore(PHONE_MACS[0])
    server.delay(PHONE_MACS[1], 0.01)
    _discover_and_offer(raw_client(1), PHONE_MACS[1])
    server.wait_for(PHONE_MACS[1], "OFFER", since=0, timeout=1)  # recorded once sent
    data = json.loads(server.export_json())
    assert data["server"]["fault_knobs"]["ignore"] == [PHONE_MACS[0]]
    assert data["server"]["fixed"] == FIXED and data["server"]["allowlist"] == sorted(ALLOWED)
    assert data["server"]["counters"]["received"] == 1
    assert data["server"]["counters"]["replies"] == 1
    assert [m["message_type"] for m in data["messages"]] == ["DISCOVER", "OFFER"]


@pytest.mark.netns
def test_start_names_a_missing_interface_or_namespace(net: TestNetwork) -> None:
    with pytest.raises(DhcpServerError, match=r"br9 \(netns hilt-ds-lab\).*no interface 'br9'"):
        DhcpServer(ServerSettings.build("br9", LAB_IP, allowlist=ALLOWED, netns=net.lab.name)).start()
    with pytest.raises(DhcpServerError, match=r"network namespace 'hilt-ds-nowhere' does not exist"):
        DhcpServer(ServerSettings.build("br0", LAB_IP, allowlist=ALLOWED, netns="hilt-ds-nowhere")).start()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"allowlist": ["00:90:8f:0d:00"]}, r"allowlist MAC '00:90:8f:0d:00': expected 12 hex digits"),
    ({"allowlist": "00:90:8f:0d:00:01"}, r"allowlist .*expected a list of MACs"),
    ({"pool": ("192.0.2.100", "198.51.100.9")}, r"pool end 198.51.100.9: outside the server's subnet 192.0.2.0/24"),
    ({"pool": ("192.0.2.200", "192.0.2.100")}, r"end is before start"),
    ({"pool": ("192.0.2.1", "192.0.2.9")}, r"contains the server's own address"),
    ({"fixed": {"00:90:8f:0d:00:01": "192.0.2.5", "00908F0D0002": "192.0.2.5"}},
     r"fixed address 192.0.2.5 given to both 00:90:8f:0d:00:01 and 00:90:8f:0d:00:02"),
    ({"fixed": {"00:90:8f:0d:00:01": "192.0.2.300"}}, r"fixed address for 00:90:8f:0d:00:01 '192.0.2.300': not an IPv4"),
    ({"netmask": "255.0.255.0"}, r"netmask '255.0.255.0'"),
    ({"lease_time": 0}, r"lease_time 0"),
    ({"dns": "192.0.2.1"}, r"dns .*not one string"),
    ({"router": "10.0.0.1"}, r"router 10.0.0.1: outside"),
])
def test_bad_settings_fail_at_construction_naming_the_setting(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DhcpConfigError, match=message):
        ServerSettings.build("br0", LAB_IP, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("options", "message"), [
    ({0: b"x"}, r"code 0 is not 1..254"),
    ({255: b"x"}, r"code 255 is not 1..254"),
    ({53: b"\x05"}, r"option 53 is the server's to set"),
    ({160: "http://192.0.2.1"}, r"option 160 must be bytes, got str"),
])
def test_bad_option_sets_are_refused_naming_mac_and_option(options: dict[int, object], message: str) -> None:
    server = DhcpServer(ServerSettings.build("br0", LAB_IP, allowlist=ALLOWED))
    with pytest.raises(DhcpConfigError, match="option set for 00:90:8f:0d:00:02: " + message):
        server.set_options("00-90-8F-0D-00-02", options)  # type: ignore[arg-type]
