"""Fuzz: 10,000 malformed DHCP/BOOTP packets on the wire must neither stop nor fool the server.

Every junk packet carries an allowlisted MAC (so it reaches the deep end of the server,
not just the allowlist check) and is invalid by construction: random bytes, short or
truncated messages, option lengths running past the end, a huge option 55 with no
message type, bad magic cookie, option 53 broken or naming a server message, BOOTREPLY
from a client, non-Ethernet hardware types, bad option overload. The server must answer
none of them, keep answering a sentinel DISCOVER between batches, and afterwards serve
a real udhcpc normally.
"""

from __future__ import annotations

import random
import struct
import time
from collections.abc import Callable, Iterator

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from framework.dhcp.packet import (
    BROADCAST_IP,
    BROADCAST_MAC,
    CLIENT_PORT,
    SERVER_PORT,
    ZERO_IP,
    build_frame,
)
from framework.dhcp.server import DhcpServer
from framework.netns import TestNetwork
from tests.dhcp.conftest import PHONE_MACS, backend_settings
from tests.dhcp.wire_clients import Udhcpc, send_frames

pytestmark = pytest.mark.netns
NETNS_PREFIX = "hilt-df"

JUNK = 10_000
BATCH = 250  # below the veth backlog (net.core.netdev_max_backlog = 1000): nothing is dropped
FUZZ_MAC = PHONE_MACS[1]
SENTINEL_MAC = PHONE_MACS[0]
COOKIE = b"\x63\x82\x53\x63"


def _header(rng: random.Random, *, op: int = 1, htype: int = 1, hlen: int = 6) -> bytes:
    chaddr = bytes.fromhex(FUZZ_MAC.replace(":", "")) + bytes(10)
    return (struct.pack("!BBBBIHH", op, htype, hlen, 0, rng.getrandbits(32), 0, 0x8000)
            + bytes(16) + chaddr + bytes(64) + bytes(128))


def _opts(*parts: bytes) -> bytes:
    return b"".join(parts)


def _huge_55(rng: random.Random, most: int = 4) -> bytes:
    """Option 55 as 2..most full RFC 3396 instances (up to 1,028 bytes; the MTU is 1,500)."""
    return b"".join(b"\x37\xff" + rng.randbytes(255) for _ in range(rng.randint(2, most)))


# Each maker returns a UDP payload that no DHCP server may answer.
def _random_bytes(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(0, 700))


def _short(rng: random.Random) -> bytes:
    return (_header(rng) + COOKIE)[:rng.randint(0, 239)]


def _bad_cookie(rng: random.Random) -> bytes:
    cookie = rng.randbytes(4)
    return _header(rng) + (cookie if cookie != COOKIE else b"\x00\x00\x00\x00") + b"\x35\x01\x01\xff"


def _truncated_option(rng: random.Random) -> bytes:
    length = rng.randint(1, 255)
    return _header(rng) + COOKIE + b"\x35\x01\x01" + bytes((rng.randint(1, 254), length)) + rng.randbytes(length - 1)


def _overrun_after_huge_55(rng: random.Random) -> bytes:
    return _header(rng) + COOKIE + b"\x35\x01\x01" + _huge_55(rng, 3) + b"\x37\xff" + rng.randbytes(rng.randint(0, 150))


def _no_message_type(rng: random.Random) -> bytes:
    return _header(rng) + COOKIE + _huge_55(rng) + b"\xff"


def _bad_message_type(rng: random.Random) -> bytes:
    bad = rng.choice([b"\x35\x00", b"\x35\x02\x01\x01", b"\x35\x01\x00", bytes((0x35, 1, rng.randint(9, 255)))])
    return _header(rng) + COOKIE + bad + _huge_55(rng) + b"\xff"


def _server_message_from_client(rng: random.Random) -> bytes:
    return _header(rng) + COOKIE + bytes((0x35, 1, rng.choice([2, 5, 6]))) + b"\xff"


def _bootreply(rng: random.Random) -> bytes:
    return _header(rng, op=2) + COOKIE + b"\x35\x01\x01\xff"


def _not_ethernet(rng: random.Random) -> bytes:
    return _header(rng, htype=rng.choice([0, 6, 32]), hlen=rng.choice([0, 8, 16, 200])) + COOKIE + b"\x35\x01\x01\xff"


def _bad_overload(rng: random.Random) -> bytes:
    header = bytearray(_header(rng))
    header[108:236] = b"\x42\x7f" + rng.randbytes(126)  # file field: option 66 overrunning it
    overload = rng.choice([b"\x34\x01\x01", b"\x34\x01\x07", b"\x34\x00"])
    return bytes(header) + COOKIE + b"\x35\x01\x01" + overload + b"\xff"


MAKERS = [_random_bytes, _short, _bad_cookie, _truncated_option, _overrun_after_huge_55,
          _no_message_type, _bad_message_type, _server_message_from_client, _bootreply,
          _not_ethernet, _bad_overload]
DECODABLE = {_server_message_from_client, _bootreply}  # valid DHCP, but not a client request


def _frame(rng: random.Random, payload: bytes) -> bytes:
    """Ethernet/IPv4/UDP to 255.255.255.255:67 around ``payload``, packed by hand: scapy
    takes ~1.3 ms per frame here, which would make 10,000 frames cost 13 s."""
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28 + len(payload), 0, 0, 64, 17, 0,
                               bytes(4), b"\xff\xff\xff\xff"))
    words = struct.unpack("!10H", ip)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    ip[10:12] = struct.pack("!H", ~total & 0xFFFF)
    udp = struct.pack("!HHHH", CLIENT_PORT, SERVER_PORT, 8 + len(payload), 0)  # no checksum
    ether = b"\xff" * 6 + b"\x02" + rng.randbytes(5) + b"\x08\x00"
    return ether + bytes(ip) + udp + payload


def test_hand_packed_frames_are_what_scapy_would_build() -> None:
    frame = _frame(random.Random(1), b"payload")
    ether = Ether(frame)
    assert ether[IP].dst == BROADCAST_IP and ether[UDP].dport == SERVER_PORT
    assert bytes(ether[UDP].payload) == b"payload"
    rebuilt = Ether(bytes(ether))
    del rebuilt[IP].chksum
    assert Ether(bytes(rebuilt))[IP].chksum == ether[IP].chksum


@pytest.fixture
def server(net: TestNetwork) -> Iterator[DhcpServer]:
    with DhcpServer(backend_settings(net)) as srv:
        yield srv


def test_ten_thousand_malformed_packets_get_no_reply_and_do_not_stop_the_server(
        server: DhcpServer, net: TestNetwork, udhcpc: Callable[..., Udhcpc]) -> None:
    _fuzz(server, net, udhcpc, JUNK)


@pytest.mark.timeout(900)
def test_hundred_thousand_malformed_packets_get_no_reply_and_do_not_stop_the_server(
        server: DhcpServer, net: TestNetwork, udhcpc: Callable[..., Udhcpc]) -> None:
    """Issue [faults]: at least 100,000 malformed packets, 0 crashes, 0 replies to them."""
    _fuzz(server, net, udhcpc, 100_000)


def _fuzz(server: DhcpServer, net: TestNetwork, udhcpc: Callable[..., Udhcpc],
          junk: int) -> None:
    JUNK = junk
    rng = random.Random(400 + junk)
    mac = PHONE_MACS[1]
    server.set_options(mac, {160: b"http://192.0.2.1/after-the-fuzz.cfg"})
    kinds: dict[str, int] = {}
    decodable = 0
    sentinels = 0
    sent = 0
    started = time.monotonic()
    while sent < JUNK:
        frames = []
        for _ in range(min(BATCH, JUNK - sent)):
            maker = rng.choice(MAKERS)
            kinds[maker.__name__] = kinds.get(maker.__name__, 0) + 1
            decodable += maker in DECODABLE
            frames.append(_frame(rng, maker(rng)))
        sentinel = build_frame(
            src_mac=SENTINEL_MAC, dst_mac=BROADCAST_MAC, src_ip=ZERO_IP, dst_ip=BROADCAST_IP,
            sport=CLIENT_PORT, dport=SERVER_PORT, op=1, xid=rng.getrandbits(32), mac=SENTINEL_MAC,
            options={53: b"\x01"}, flags=0x8000)
        since = time.time()
        send_frames(net.client(1), [*frames, bytes(sentinel)])
        sent += len(frames)
        sentinels += 1
        server.wait_for(SENTINEL_MAC, "OFFER", since=since, timeout=10)  # still alive, in order
    elapsed = time.monotonic() - started

    counts = server.counters()
    assert counts.received + counts.malformed == JUNK + sentinels, f"frames lost: {counts}"
    assert counts.malformed == JUNK - decodable, counts
    replies = [r for r in server.transcript() if r.direction == "sent"]
    assert {r.mac for r in replies} == {SENTINEL_MAC}
    assert len(replies) == sentinels == counts.replies
    junk_seen = [r for r in server.transcript(FUZZ_MAC)]
    assert len(junk_seen) == decodable and all(r.ignored for r in junk_seen)
    assert len(kinds) == len(MAKERS), kinds

    bound = udhcpc(1).obtain()
    assert bound is not None, "after the fuzz a normal client got no lease"
    assert bytes.fromhex(bound.env["opt160"]) == b"http://192.0.2.1/after-the-fuzz.cfg"
    print(f"{JUNK} junk packets in {elapsed:.1f} s; kinds {kinds}")
