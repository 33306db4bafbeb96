"""The scapy server's replies: which options go out, where the frame goes, and how it fits.

Separate from the address plan (:mod:`framework.dhcp.leases`) and the server thread so the
wire-format choices documented in :mod:`framework.dhcp.server` (base options, the MAC's
option set on top, RFC 3396 splits, option 52 overload, RFC 2131 4.1 destinations) are
in one place and need no socket to test.
"""

from __future__ import annotations

import logging

from scapy.packet import Packet

from framework.dhcp.leases import Decision
from framework.dhcp.options import OptionCodecError, OptionSet, encoded_length
from framework.dhcp.packet import (
    BOOTP_FIXED,
    BROADCAST_IP,
    BROADCAST_MAC,
    CLIENT_PORT,
    MESSAGE_CODES,
    SERVER_PORT,
    ZERO_IP,
    DhcpFrame,
    DhcpMessage,
    build_frame,
)
from framework.dhcp.settings import ServerSettings
from framework.dhcp.transcript import SENT, DhcpMessageRecord

log = logging.getLogger(__name__)

MIN_DATAGRAM = 576  # every client accepts a DHCP datagram this large (RFC 2131 section 2)
IP_UDP_HEADERS = 28


def reply_options(settings: ServerSettings, msg: DhcpMessage, decision: Decision,
                  option_set: OptionSet) -> OptionSet:
    """The options of the reply: the server's own, the base options, then ``option_set``."""
    assert decision.reply is not None
    opts: OptionSet = {53: bytes((MESSAGE_CODES[decision.reply],)), 54: settings.server_ip.packed}
    if 61 in msg.options:
        opts[61] = msg.options[61]  # RFC 6842: echo the client identifier
    if decision.reply == "NAK":
        opts[56] = decision.note.encode("ascii", "replace")[:255]  # RFC 2131 Table 3
        return opts
    lease_time = settings.lease_time
    if decision.lease_options:
        opts[51] = lease_time.to_bytes(4, "big")
        opts[58] = (lease_time // 2).to_bytes(4, "big")
        opts[59] = (lease_time * 7 // 8).to_bytes(4, "big")
    opts[1] = settings.network.netmask.packed
    if settings.router is not None:
        opts[3] = settings.router.packed
    if settings.dns:
        opts[6] = b"".join(d.packed for d in settings.dns)
    if settings.domain:
        opts[15] = settings.domain.encode("ascii")
    opts.update(option_set)
    return opts


def build_reply(settings: ServerSettings, server_mac: str, frame: DhcpFrame, decision: Decision,
                options: OptionSet) -> tuple[Packet, DhcpMessageRecord]:
    """The reply frame to ``frame`` and its transcript record (time 0: stamped when sent)."""
    msg = frame.message
    kind, yiaddr, note = decision.reply, decision.yiaddr, decision.note
    assert kind is not None
    server_ip = str(settings.server_ip)
    # RFC 2131 4.1: relay -> giaddr:67; NAK -> broadcast; ciaddr set -> unicast to it;
    # broadcast bit -> broadcast; else unicast to chaddr/yiaddr.
    if msg.giaddr != ZERO_IP:
        dst_mac, dst_ip, dport = frame.src_mac, msg.giaddr, SERVER_PORT
    elif kind == "NAK":
        dst_mac, dst_ip, dport = BROADCAST_MAC, BROADCAST_IP, CLIENT_PORT
    elif msg.ciaddr != ZERO_IP:
        dst_mac, dst_ip, dport = frame.src_mac, msg.ciaddr, CLIENT_PORT
    elif msg.broadcast:
        dst_mac, dst_ip, dport = BROADCAST_MAC, BROADCAST_IP, CLIENT_PORT
    else:
        dst_mac, dst_ip, dport = msg.mac, yiaddr, CLIENT_PORT
    ciaddr = msg.ciaddr if kind == "ACK" else ZERO_IP
    # RFC 2131 section 2 / RFC 2132 9.10: a client accepts 576 bytes (IP datagram) or
    # what its option 57 says; options that do not fit overflow into file/sname.
    limit = MIN_DATAGRAM
    max_size = msg.options.get(57)
    if max_size is not None and len(max_size) == 2:
        limit = max(limit, int.from_bytes(max_size, "big"))
    space = limit - IP_UDP_HEADERS - BOOTP_FIXED - 4

    def reply_frame(max_size: int | None) -> Packet:
        return build_frame(
            src_mac=server_mac, dst_mac=dst_mac, src_ip=server_ip,
            dst_ip=dst_ip, sport=SERVER_PORT, dport=dport, op=2, xid=msg.xid, mac=msg.mac,
            options=options, max_size=max_size, flags=msg.flags, ciaddr=ciaddr,
            yiaddr=yiaddr, giaddr=msg.giaddr,
        )

    reply_note = note
    try:
        out = reply_frame(limit - IP_UDP_HEADERS)
        if encoded_length(options) > space:
            reply_note += f"; options overloaded into file/sname (option 52) to fit {limit} bytes"
    except OptionCodecError as exc:
        out = reply_frame(None)
        reply_note += f"; larger than the {limit} bytes the client accepts: {exc}"
        log.warning("DHCP %s to %s: %s", kind, msg.mac, reply_note)
    record = DhcpMessageRecord(
        time=0.0, direction=SENT, message_type=kind, xid=msg.xid, mac=msg.mac,
        ciaddr=ciaddr, yiaddr=yiaddr, source=server_ip, destination=dst_ip,
        options=options, note=reply_note,
    )
    return out, record
