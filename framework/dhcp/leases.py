"""The scapy server's address plan: leases, offers, declined addresses and what to answer.

Kept apart from the server thread and the sockets so the RFC 2131 section 4.3 decisions
(which address a client gets, when a REQUEST is ACKed, NAKed or left unanswered) read as
one piece. :class:`LeaseBook` is not thread-safe: :class:`~framework.dhcp.server.DhcpServer`
calls it with its lock held. Times are ``time.monotonic()`` seconds.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from framework.dhcp.packet import ZERO_IP, DhcpMessage
from framework.dhcp.settings import ServerSettings

OFFER_HOLD_S = 60.0  # an offered address stays reserved for the client this long


@dataclass(frozen=True)
class Lease:
    """An address held by a client until ``expires`` (monotonic seconds)."""

    ip: ipaddress.IPv4Address
    expires: float


@dataclass(frozen=True)
class Decision:
    """What to answer a client message: reply type (None: no reply), address and why."""

    reply: str | None
    yiaddr: str = ZERO_IP
    note: str = ""
    lease_options: bool = True  # 51/58/59; not in a NAK or an ACK to INFORM


class LeaseBook:
    """Who holds or was offered which address, and the answer to each client message."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self._leases: dict[str, Lease] = {}
        self._offers: dict[str, Lease] = {}
        self._declined: set[ipaddress.IPv4Address] = set()

    def current(self, now: float) -> dict[str, str]:
        """Unexpired leases: MAC -> address."""
        return {mac: str(lease.ip) for mac, lease in self._leases.items() if lease.expires > now}

    def decide(self, msg: DhcpMessage, *, nak: bool, now: float) -> Decision:
        """What to answer a client message (RFC 2131 4.3); ``nak`` is the NAK fault knob."""
        mac = msg.mac
        requested = msg.option_ip(50)
        if msg.message_type == "DISCOVER":
            ip = self._address_for(mac, requested, now)
            if ip is None:
                return Decision(None, note="no address for this client (no fixed address, pool exhausted or absent)")
            self._offers[mac] = Lease(ip, now + OFFER_HOLD_S)
            return Decision("OFFER", str(ip), f"offer {ip}")
        if msg.message_type == "REQUEST":
            if nak:
                return Decision("NAK", note="fault knob: nak")
            return self._decide_request(msg, requested, msg.option_ip(54), now)
        if msg.message_type == "DECLINE":
            if requested is not None:
                ip = ipaddress.IPv4Address(requested)
                self._declined.add(ip)
                for table in (self._leases, self._offers):
                    if mac in table and table[mac].ip == ip:
                        del table[mac]
                return Decision(None, note=f"declined {ip}: not offered again")
            return Decision(None, note="DECLINE without option 50: nothing to do")
        if msg.message_type == "RELEASE":
            lease = self._leases.get(mac)
            if lease is not None and str(lease.ip) == msg.ciaddr:
                del self._leases[mac]
                return Decision(None, note=f"released {msg.ciaddr}")
            return Decision(None, note=f"RELEASE of {msg.ciaddr}, which {mac} does not hold")
        # INFORM: configuration only, no address (RFC 2131 4.3.5)
        return Decision("ACK", note="INFORM answered", lease_options=False)

    def _decide_request(self, msg: DhcpMessage, requested: str | None, server_id: str | None,
                        now: float) -> Decision:
        mac = msg.mac
        network = self.settings.network
        bound = self._bound_address(mac, now)
        if server_id is not None:  # SELECTING
            if server_id != str(self.settings.server_ip):
                self._offers.pop(mac, None)
                return Decision(None, note=f"REQUEST for server {server_id}: the client chose another server")
            offered = self._offers.get(mac)
            expected = offered.ip if offered is not None else bound
            if requested is None:
                return Decision("NAK", note="SELECTING REQUEST without option 50")
            if expected is None or str(expected) != requested:
                return Decision("NAK", note=f"requested {requested}, but offered {expected}")
            return self._ack(mac, expected, now)
        if requested is not None:  # INIT-REBOOT
            ip = ipaddress.IPv4Address(requested)
            if ip not in network:
                return Decision("NAK", note=f"INIT-REBOOT for {ip}: wrong network (we serve {network})")
            if bound is not None:
                if ip != bound:
                    return Decision("NAK", note=f"INIT-REBOOT for {ip}, but the client's address is {bound}")
                return self._ack(mac, ip, now)
            if self._is_free(ip, mac, now) and self._in_pool(ip):
                return self._ack(mac, ip, now)
            return Decision("NAK", note=f"INIT-REBOOT for {ip}: not a free pool address")
        if msg.ciaddr != ZERO_IP:  # RENEWING (unicast) or REBINDING (broadcast)
            if bound is not None and str(bound) == msg.ciaddr:
                return self._ack(mac, bound, now)
            return Decision("NAK", note=f"renewing {msg.ciaddr}, but the client's address is {bound}")
        return Decision("NAK", note="REQUEST without server id, requested address or ciaddr")

    def _ack(self, mac: str, ip: ipaddress.IPv4Address, now: float) -> Decision:
        lease_time = self.settings.lease_time
        self._offers.pop(mac, None)
        self._leases[mac] = Lease(ip, now + lease_time)
        return Decision("ACK", str(ip), f"lease {ip} for {lease_time} s")

    def _bound_address(self, mac: str, now: float) -> ipaddress.IPv4Address | None:
        fixed = self.settings.fixed.get(mac)
        if fixed is not None:
            return fixed
        lease = self._leases.get(mac)
        if lease is not None and lease.expires > now:
            return lease.ip
        return None

    def _in_pool(self, ip: ipaddress.IPv4Address) -> bool:
        pool = self.settings.pool
        return pool is not None and pool[0] <= ip <= pool[1]

    def _is_free(self, ip: ipaddress.IPv4Address, mac: str, now: float) -> bool:
        if ip == self.settings.server_ip or ip in self._declined:
            return False
        if any(f == ip and m != mac for m, f in self.settings.fixed.items()):
            return False
        for table in (self._leases, self._offers):
            if any(lease.ip == ip and lease.expires > now and m != mac for m, lease in table.items()):
                return False
        return True

    def _address_for(self, mac: str, requested: str | None, now: float) -> ipaddress.IPv4Address | None:
        """RFC 2131 4.3.1: fixed, else the client's lease, its offer, a free requested address, any free one."""
        bound = self._bound_address(mac, now)
        if bound is not None:
            return bound
        offer = self._offers.get(mac)
        if offer is not None and offer.expires > now:
            return offer.ip
        lease = self._leases.get(mac)  # expired, but nobody took it since
        if lease is not None and self._is_free(lease.ip, mac, now):
            return lease.ip
        if requested is not None:
            ip = ipaddress.IPv4Address(requested)
            if self._in_pool(ip) and self._is_free(ip, mac, now):
                return ip
        pool = self.settings.pool
        if pool is None:
            return None
        for value in range(int(pool[0]), int(pool[1]) + 1):
            ip = ipaddress.IPv4Address(value)
            if self._is_free(ip, mac, now):
                return ip
        return None
