"""Rogue DHCP server probe: send one DISCOVER of our own and report every server that answers.

Why: the lab's DHCP server must be the only one a phone can hear, or a test measures the
wrong server's options; and starting ours next to an office server is an outage
(ARCHITECTURE.md, "Safety"). Run the probe before starting our server and refuse to go
on when anything answers.

Run it before starting the lab's own server: our scapy server does not see frames sent
from its own host, but another server on the same host (Kea, with its own packet
socket) may answer the probe.

The probe listens for a fixed window (``timeout``, default :data:`PROBE_WINDOW_S`):
"every server that answers" has no event that says the last one has spoken, so the window
is the definition, not a stand-in for an event. It never sends a REQUEST, so no server
hands out a lease.

Why 6 s and a retransmission: real servers check an address before they offer it.
busybox udhcpd ARP-probes the address and offers 2.0 s after the DISCOVER (``-a 2000``
is its default); dnsmasq pings it first (~3 s); and a server that checks asynchronously
may drop the first DISCOVER and answer the client's retransmission. So the probe does
what a client does (RFC 2131 section 4.1): one DISCOVER, the same DISCOVER again after
4 s randomised by +-1 s (same xid, ``secs`` counting), and listens until 6 s after the
first. Both callers (``hil lab serve``, ``hil run``) use this one default; it is the
price of the start-up check. A server slower than that is caught during the run by the
passive watch (framework/dhcp/watch.py).

Usage::

    refuse_rogue_servers("br-lab", netns="hil-lab")   # raises RogueDhcpServerError
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from typing import Any

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
from framework.errors import HilError
from framework.netns import Netns, interface_mac

log = logging.getLogger(__name__)

PROBE_VENDOR_CLASS = b"hil-rogue-dhcp-probe"
#: How long the start-up probe listens, from the first DISCOVER (see the module docstring).
PROBE_WINDOW_S = 6.0
#: RFC 2131 4.1: the first retransmission 4 s after the DISCOVER, randomised by +-1 s.
RETRANSMIT_S = 4.0
RETRANSMIT_JITTER_S = 1.0
#: What the probe asks for: the provisioning options a rogue server could hand a phone.
PROBE_PARAMETERS = bytes((1, 3, 6, 15, 43, 66, 67, 160))


class RogueDhcpServerError(HilError, RuntimeError):
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


def probe_dhcp_servers(interface: str, *, netns: str | None = None,
                       timeout: float = PROBE_WINDOW_S, mac: str | None = None,
                       ) -> list[DhcpServerSeen]:
    """Broadcast a DISCOVER on ``interface`` (again after ~4 s, RFC 2131 4.1, when the
    window is that long) and return every answer within ``timeout`` s of the first.

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

    def discover(secs: int) -> Any:
        return build_frame(
            src_mac=own_mac, dst_mac=BROADCAST_MAC, src_ip=ZERO_IP, dst_ip=BROADCAST_IP,
            sport=CLIENT_PORT, dport=SERVER_PORT, op=1, xid=xid, mac=chaddr,
            flags=BROADCAST_FLAG, secs=secs,
            options={53: b"\x01", 55: PROBE_PARAMETERS, 60: PROBE_VENDOR_CLASS},
        )

    seen: list[DhcpServerSeen] = []
    sock = open_l2(interface, f"udp and dst port {CLIENT_PORT}")
    try:
        start = time.monotonic()
        deadline = start + timeout
        retransmit: float | None = start + RETRANSMIT_S + random.uniform(
            -RETRANSMIT_JITTER_S, RETRANSMIT_JITTER_S)
        sock.send(discover(0))
        while (left := deadline - time.monotonic()) > 0:
            if retransmit is not None and time.monotonic() >= retransmit:
                sock.send(discover(int(time.monotonic() - start)))
                retransmit = None
            wait = left if retransmit is None else min(left, retransmit - time.monotonic())
            data = receive(sock, wait)
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
            if any((a.source_mac, a.server_id) == (answer.source_mac, answer.server_id)
                   for a in seen):
                continue  # the same server answering the retransmission too
            log.info("DHCP probe on %s: %s", interface, answer)
            seen.append(answer)
    finally:
        sock.close()
    return seen


def refuse_rogue_servers(interface: str, *, netns: str | None = None,
                         timeout: float = PROBE_WINDOW_S, mac: str | None = None) -> None:
    """Raise :class:`RogueDhcpServerError` if any DHCP server answers a probe on ``interface``."""
    seen = probe_dhcp_servers(interface, netns=netns, timeout=timeout, mac=mac)
    if seen:
        where = f"{interface} (netns {netns})" if netns else interface
        servers = "; ".join(str(s) for s in seen)
        raise RogueDhcpServerError(
            f"another DHCP server answers on {where}: {servers}. Refusing to start the lab "
            "DHCP server: disconnect or disable the other server first"
        )
