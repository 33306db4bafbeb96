"""DHCPv4 messages on the wire: parse a BOOTP/DHCP payload, build replies with scapy.

scapy builds every frame we send (Ether/IP/UDP/BOOTP/DHCP) and dissects the fixed BOOTP
header of what we receive; the options area goes through framework/dhcp/options.py so
values stay byte-exact (see that module for why). Shared by the scapy server, the Kea
transcript sniffer and the rogue-server probe.

References: RFC 2131 section 2 (message format), 4.1 (where replies go), Table 3 (fields
in server replies); RFC 1542 section 2.1 (300-byte minimum BOOTP message).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet

from framework.dhcp.options import (
    OptionCodecError,
    OptionSet,
    decode_message_options,
    pack_options,
)
from framework.errors import HilError, InputError

MAGIC_COOKIE = b"\x63\x82\x53\x63"
BOOTP_FIXED = 236  # op .. file, before the magic cookie (RFC 2131 Figure 1)
BOOTP_MIN = 300  # RFC 1542 2.1: relay agents and old clients drop shorter messages
SERVER_PORT = 67
CLIENT_PORT = 68
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
BROADCAST_IP = "255.255.255.255"
ZERO_IP = "0.0.0.0"
BROADCAST_FLAG = 0x8000

MESSAGE_TYPES: dict[int, str] = {
    1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE",
    5: "ACK", 6: "NAK", 7: "RELEASE", 8: "INFORM",
}
MESSAGE_CODES: dict[str, int] = {name: code for code, name in MESSAGE_TYPES.items()}
CLIENT_MESSAGES = frozenset({"DISCOVER", "REQUEST", "DECLINE", "RELEASE", "INFORM"})
SERVER_MESSAGES = frozenset({"OFFER", "ACK", "NAK"})


class DhcpMessageError(HilError, ValueError):
    """A payload that is not a DHCP message we can act on; the message says why."""


class DhcpConfigError(InputError):
    """A server setting that cannot work (bad MAC, address outside the subnet, ...)."""


class DhcpServerError(HilError, RuntimeError):
    """A DHCP server could not start or run; the message names the interface and why."""


def normalise_mac(mac: str, *, where: str = "MAC") -> str:
    """``00908F000001`` / ``00-90-8f-00-00-01`` / ``00:90:8F:00:00:01`` -> ``00:90:8f:00:00:01``."""
    compact = str(mac).strip().lower().replace(":", "").replace("-", "").replace(".", "")
    if len(compact) != 12 or any(c not in "0123456789abcdef" for c in compact):
        raise DhcpConfigError(f"{where} {mac!r}: expected 12 hex digits (separators : - . allowed)")
    return ":".join(compact[i:i + 2] for i in range(0, 12, 2))


def parse_ipv4(value: str, *, where: str) -> ipaddress.IPv4Address:
    """An IPv4 address from text, or a :class:`DhcpConfigError` naming the setting."""
    try:
        return ipaddress.IPv4Address(str(value).strip())
    except ValueError:
        raise DhcpConfigError(f"{where} {value!r}: not an IPv4 address") from None


@dataclass(frozen=True)
class DhcpMessage:
    """One decoded DHCP message: the BOOTP header fields we use and every option, raw.

    ``options`` holds the values exactly as on the wire (RFC 3396 instances joined);
    treat it as read-only.
    """

    op: int
    xid: int
    secs: int
    flags: int
    ciaddr: str
    yiaddr: str
    siaddr: str
    giaddr: str
    mac: str
    options: OptionSet
    message_type: str

    @property
    def broadcast(self) -> bool:
        return bool(self.flags & BROADCAST_FLAG)

    def option_ip(self, code: int) -> str | None:
        """An option holding one IPv4 address (50 requested, 54 server id), if well formed."""
        value = self.options.get(code)
        if value is None or len(value) != 4:
            return None
        return str(ipaddress.IPv4Address(value))


def parse_dhcp(payload: bytes) -> DhcpMessage:
    """Decode a UDP payload as a DHCP message, or raise :class:`DhcpMessageError` saying why.

    Accepts only Ethernet hardware addresses (htype 1, hlen 6: the lab is Ethernet), the
    magic cookie, a well-formed options area and an option 53 naming a known type.
    """
    if len(payload) < BOOTP_FIXED + len(MAGIC_COOKIE):
        raise DhcpMessageError(f"{len(payload)} bytes: shorter than a BOOTP header with magic cookie (240)")
    if payload[BOOTP_FIXED:BOOTP_FIXED + 4] != MAGIC_COOKIE:
        raise DhcpMessageError(f"no DHCP magic cookie (got {payload[BOOTP_FIXED:BOOTP_FIXED + 4].hex()})")
    header = BOOTP(payload[:BOOTP_FIXED + 4])
    op = int(header.op)
    if op not in (1, 2):
        raise DhcpMessageError(f"op {op}: neither BOOTREQUEST (1) nor BOOTREPLY (2)")
    if header.htype != 1 or header.hlen != 6:
        raise DhcpMessageError(f"hardware type {header.htype} length {header.hlen}: only Ethernet (1, 6)")
    try:
        options = decode_message_options(
            payload[BOOTP_FIXED + 4:], file=bytes(header.file), sname=bytes(header.sname)
        )
    except OptionCodecError as exc:
        raise DhcpMessageError(str(exc)) from None
    kind = options.get(53)
    if kind is None:
        raise DhcpMessageError("no option 53 (message type): a BOOTP message, not DHCP")
    if len(kind) != 1 or kind[0] not in MESSAGE_TYPES:
        raise DhcpMessageError(f"option 53 (message type) value {kind.hex()!r} is not 1..8")
    chaddr = bytes(header.chaddr)[:6]
    return DhcpMessage(
        op=op,
        xid=int(header.xid),
        secs=int(header.secs),
        flags=int(header.flags),
        ciaddr=str(header.ciaddr),
        yiaddr=str(header.yiaddr),
        siaddr=str(header.siaddr),
        giaddr=str(header.giaddr),
        mac=":".join(f"{b:02x}" for b in chaddr),
        options=options,
        message_type=MESSAGE_TYPES[kind[0]],
    )


@dataclass(frozen=True)
class DhcpFrame:
    """A DHCP message with the Ethernet/IP addressing it came with."""

    src_mac: str
    src_ip: str
    dst_ip: str
    sport: int
    dport: int
    message: DhcpMessage


def parse_frame(frame: bytes) -> DhcpFrame:
    """Decode an Ethernet frame carrying UDP/DHCP; :class:`DhcpMessageError` if it is not one."""
    try:
        # Stop at UDP: the payload stays the raw bytes as received (see options.py).
        ether = Ether(frame, stop_dissection_after=UDP)
    except Exception as exc:  # scapy raises many kinds on garbage
        raise DhcpMessageError(f"undecodable frame: {exc}") from None
    if IP not in ether or UDP not in ether:
        raise DhcpMessageError("not an IPv4/UDP frame")
    udp = ether[UDP]
    payload = bytes(udp.payload)
    return DhcpFrame(
        src_mac=str(ether.src).lower(),
        src_ip=str(ether[IP].src),
        dst_ip=str(ether[IP].dst),
        sport=int(udp.sport),
        dport=int(udp.dport),
        message=parse_dhcp(payload),
    )


def build_frame(
    *,
    src_mac: str,
    dst_mac: str,
    src_ip: str,
    dst_ip: str,
    sport: int,
    dport: int,
    op: int,
    xid: int,
    mac: str,
    options: OptionSet,
    max_size: int | None = None,
    flags: int = 0,
    secs: int = 0,
    ciaddr: str = ZERO_IP,
    yiaddr: str = ZERO_IP,
    siaddr: str = ZERO_IP,
    giaddr: str = ZERO_IP,
) -> Packet:
    """A complete DHCP frame; options go out in the given order, long ones split (RFC 3396).

    With ``max_size`` (the DHCP message size the receiver accepts, without IP/UDP headers)
    options that do not fit overflow into ``file``/``sname`` (option 52, see
    :func:`~framework.dhcp.options.pack_options`). The BOOTP message is padded to 300
    bytes (RFC 1542 2.1).
    """
    space = (max_size if max_size is not None else 1 << 16) - BOOTP_FIXED - len(MAGIC_COOKIE)
    packed = pack_options(options, space=space)
    opts: list[Any] = list(packed.main)
    opts.append("end")
    size = BOOTP_FIXED + 4 + sum(2 + len(v) for _, v in packed.main) + 1
    if size < BOOTP_MIN:
        opts.append(b"\x00" * (BOOTP_MIN - size))
    chaddr = bytes.fromhex(mac.replace(":", "")) + b"\x00" * 10
    return (
        Ether(src=src_mac, dst=dst_mac)
        / IP(src=src_ip, dst=dst_ip)
        / UDP(sport=sport, dport=dport)
        / BOOTP(op=op, xid=xid, secs=secs, flags=flags, ciaddr=ciaddr, yiaddr=yiaddr,
                siaddr=siaddr, giaddr=giaddr, chaddr=chaddr, file=packed.file,
                sname=packed.sname)
        / DHCP(options=opts)
    )
