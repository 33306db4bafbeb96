"""Rogue DHCP server probe: send one DISCOVER of our own and report every server that answers.

Why: the lab's DHCP server must be the only one a phone can hear, or a test measures the
wrong server's options; and starting ours next to an office server is an outage
(ARCHITECTURE.md, "Safety"). Run the probe before starting our server and refuse to go
on when anything answers.

Run it before starting the lab's own server: our scapy server does not see frames sent
from its own host, but another server on the same host (Kea, with its own packet
socket) may answer the probe.

The probe listens for a fixed window (``timeout``): "every server that answers" has no
event that says the last one has spoken, so the window is the definition, not a stand-in
for an event. It never sends a REQUEST, so no server hands out a lease.

Usage::

    refuse_rogue_servers("br-lab", netns="hil-lab")   # raises RogueDhcpServerError
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

from framework.dhcp.options import OptionSet
from framework.dhcp.packet import (
    BROADCAST_FLAG,
    BROADCAST_IP,
    BROADCAST_MAC,
    CLIENT_PORT,
    SERVER_MESSAGES,
    SERVER_PORT,
    ZERO_IP,
    DhcpMessageError,
    build_frame,
    normalise_mac,
    parse_frame,
)
from framework.dhcp.wire import open_l2, receive
from framework.netns import Netns, interface_mac

log = logging.getLogger(__name__)

PROBE_VENDOR_CLASS = b"hil-rogue-dhcp-probe"
#: What the probe asks for: the provisioning options a rogue server could hand a phone.
PROBE_PARAMETERS = bytes((1, 3, 6, 15, 43, 66, 67, 160))


class RogueDhcpServerError(RuntimeError):
    """Another DHCP server answers on the lab network; the message names each one."""


@dataclass(frozen=True)
class DhcpServerSeen:
    """One answer to the probe: who sent it and what it offered."""

    server_id: str | None
    source_ip: str
    source_mac: str
    message_type: str
    offered_address: str
    options: OptionSet
    time: float

    def __str__(self) -> str:
        sid = self.server_id or "no server id"
        return (f"{self.message_type} from {self.source_ip} ({self.source_mac}, {sid}) "
                f"offering {self.offered_address}")


def probe_dhcp_servers(interface: str, *, netns: str | None = None, timeout: float = 2.0,
                       mac: str | None = None) -> list[DhcpServerSeen]:
    """Broadcast one DISCOVER on ``interface`` and return every answer within ``timeout`` s.

    ``mac`` is the client hardware address to probe as (default: the interface's own, so
    a server that answers any MAC answers us). Runs in ``netns`` when given.
    """
    if netns is not None:
        with Netns(netns).entered():
            return _probe(interface, timeout, mac)
    return _probe(interface, timeout, mac)


def _probe(interface: str, timeout: float, mac: str | None) -> list[DhcpServerSeen]:
    own_mac = interface_mac(interface)
    chaddr = normalise_mac(mac) if mac is not None else own_mac
    xid = random.getrandbits(32)
    discover = build_frame(
        src_mac=own_mac, dst_mac=BROADCAST_MAC, src_ip=ZERO_IP, dst_ip=BROADCAST_IP,
        sport=CLIENT_PORT, dport=SERVER_PORT, op=1, xid=xid, mac=chaddr, flags=BROADCAST_FLAG,
        options={53: b"\x01", 55: PROBE_PARAMETERS, 60: PROBE_VENDOR_CLASS},
    )
    seen: list[DhcpServerSeen] = []
    sock = open_l2(interface, f"udp and dst port {CLIENT_PORT}")
    try:
        sock.send(discover)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            data = receive(sock, left)
            if data is None:
                continue
            try:
                frame = parse_frame(data)
            except DhcpMessageError:
                continue
            msg = frame.message
            if msg.op != 2 or msg.xid != xid or msg.message_type not in SERVER_MESSAGES:
                continue
            answer = DhcpServerSeen(
                server_id=msg.option_ip(54), source_ip=frame.src_ip, source_mac=frame.src_mac,
                message_type=msg.message_type, offered_address=msg.yiaddr,
                options=dict(msg.options), time=time.time(),
            )
            log.warning("DHCP probe on %s: %s", interface, answer)
            seen.append(answer)
    finally:
        sock.close()
    return seen


def refuse_rogue_servers(interface: str, *, netns: str | None = None, timeout: float = 2.0,
                         mac: str | None = None) -> None:
    """Raise :class:`RogueDhcpServerError` if any DHCP server answers a probe on ``interface``."""
    seen = probe_dhcp_servers(interface, netns=netns, timeout=timeout, mac=mac)
    if seen:
        where = f"{interface} (netns {netns})" if netns else interface
        servers = "; ".join(str(s) for s in seen)
        raise RogueDhcpServerError(
            f"another DHCP server answers on {where}: {servers}. Refusing to start the lab "
            "DHCP server: disconnect or disable the other server first"
        )
