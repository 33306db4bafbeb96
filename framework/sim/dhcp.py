"""The virtual phone's DHCP client: DISCOVER/OFFER/REQUEST/ACK on the phone's own link.

Frames are built with scapy (``scapy.layers.dhcp``, not ``scapy.all``: LAB-NOTES import
cost) and sent on an AF_PACKET socket opened in the phone's namespace thread, so each
phone sends its own MAC (scapy's per-process interface cache would not). Replies are
parsed with ``struct``, keeping every option's raw bytes for the virtual firmware.

What the 400HD sends (docs/CONTRACTS.md, PROVISIONING.md "What the phone sends"): the
model in Option 60 and Option 77, Option 55 listing 1,3,6,12,15,28,42,43,60,66,67,160 and
the configured URL option, Option 61 = hardware type 1 + MAC. Renewal is the RFC 2131
4.4.5 RENEWING exchange: a unicast REQUEST from the leased address at T1.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address

from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from framework.errors import HilError

ETH_P_IP = 0x0800
BASE_PARAMETERS = (1, 3, 6, 12, 15, 28, 42, 43, 60, 66, 67, 160)
MAGIC_COOKIE = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK = 1, 2, 3, 4, 5, 6
FIRST_RETRY_S = 1.0      # DISCOVER/REQUEST retransmission: 1, 2, 4, 4, ... s
MAX_RETRY_S = 4.0        # capped below RFC 2131's 64 s so a test bench recovers quickly


class Cancelled(HilError):
    """The phone lost power or rebooted while the exchange was in progress."""


@dataclass(frozen=True)
class Lease:
    """What an ACK gave the phone: address, servers, timers and every option's raw bytes."""

    address: IPv4Address
    prefix_len: int
    server: IPv4Address
    lease_time: int
    renew_after: float
    router: IPv4Address | None = None
    dns: tuple[IPv4Address, ...] = ()
    options: dict[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class _Reply:
    kind: int
    yiaddr: IPv4Address
    options: dict[int, bytes]


def parse_options(data: bytes) -> dict[int, bytes]:
    """DHCP options after the magic cookie: code -> bytes; repeated codes joined (RFC 3396)."""
    options: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0:
            i += 1
            continue
        if code == 255 or i + 1 >= len(data):
            break
        length = data[i + 1]
        options[code] = options.get(code, b"") + data[i + 2:i + 2 + length]
        i += 2 + length
    return options


def _ip_option(options: dict[int, bytes], code: int) -> list[IPv4Address]:
    raw = options.get(code, b"")
    return [IPv4Address(raw[i:i + 4]) for i in range(0, len(raw) - len(raw) % 4, 4)]


class DhcpClient:
    """One phone's DHCP client; create and use it in the phone's namespace thread."""

    def __init__(self, ifname: str, mac: str, model: str, url_option: int,
                 cancelled: threading.Event, log: Callable[[str], None],
                 user_class: bool = True) -> None:
        self.ifname = ifname
        self.mac = bytes.fromhex(mac.replace(":", ""))
        self.model = model.encode("ascii")
        #: False: DISCOVER and REQUEST carry no Option 77 (deviation option77-omitted)
        self.user_class = user_class
        parameters = list(BASE_PARAMETERS)
        if url_option not in parameters:
            parameters.append(url_option)
        self.parameters = parameters
        self.cancelled = cancelled
        self.log = log

    # -- packets ----------------------------------------------------------------------

    def _options(self, kind: int, extra: list[tuple[int | str, object]]) -> list[object]:
        user_class = [(77, self.model)] if self.user_class else []
        return [("message-type", kind), (61, b"\x01" + self.mac), (60, self.model),
                *user_class, ("param_req_list", self.parameters), *extra, "end"]

    def _broadcast(self, xid: int, kind: int, extra: list[tuple[int | str, object]]) -> bytes:
        frame = (Ether(src=self.mac, dst="ff:ff:ff:ff:ff:ff")
                 / IP(src="0.0.0.0", dst="255.255.255.255")
                 / UDP(sport=68, dport=67)
                 / BOOTP(chaddr=self.mac, xid=xid, flags=0x8000)
                 / DHCP(options=self._options(kind, extra)))
        return bytes(frame)

    def _parse(self, payload: bytes, xid: int) -> _Reply | None:
        if len(payload) < 240 or payload[0] != 2 or payload[236:240] != MAGIC_COOKIE:
            return None
        if struct.unpack_from("!I", payload, 4)[0] != xid or payload[28:34] != self.mac:
            return None
        options = parse_options(payload[240:])
        overload = options.get(52, b"\x00")[0]
        # RFC 2132 9.3: option 52 moves more options into 'file' (1) and/or 'sname' (2),
        # read in that order after the options field (RFC 3396 joins repeated codes).
        for flag, area in ((1, payload[108:236]), (2, payload[44:108])):
            if overload & flag:
                for code, value in parse_options(area).items():
                    options[code] = options.get(code, b"") + value
        kind = options.get(53, b"\x00")[0]
        return _Reply(kind, IPv4Address(payload[16:20]), options)

    # -- exchanges --------------------------------------------------------------------

    def obtain(self) -> Lease:
        """DISCOVER until an OFFER, REQUEST it until ACK (restart on NAK); Cancelled on power loss."""
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP)) as raw:
            raw.bind((self.ifname, ETH_P_IP))
            while True:
                xid = struct.unpack("!I", os.urandom(4))[0]
                self.log("udhcpc: sending discover")
                offer = self._exchange(raw, xid, DISCOVER, [], {OFFER})
                server = offer.options.get(54, b"")
                self.log(f"udhcpc: sending select for {offer.yiaddr}")
                answer = self._exchange(raw, xid, REQUEST, [(50, offer.yiaddr.packed),
                                                            (54, server)], {ACK, NAK})
                if answer.kind == ACK:
                    return self._lease(answer)
                self.log("udhcpc: received NAK")

    def _exchange(self, raw: socket.socket, xid: int, kind: int,
                  extra: list[tuple[int | str, object]], wanted: set[int]) -> _Reply:
        frame = self._broadcast(xid, kind, extra)
        interval = FIRST_RETRY_S
        while True:
            self._check()
            raw.send(frame)
            deadline = time.monotonic() + interval
            while (left := deadline - time.monotonic()) > 0:
                self._check()
                ready, _, _ = select.select([raw], [], [], min(left, 0.1))
                if not ready:
                    continue
                data = raw.recv(4096)
                reply = self._frame_reply(data, xid)
                if reply is not None and reply.kind in wanted:
                    return reply
            interval = min(interval * 2, MAX_RETRY_S)

    def _frame_reply(self, frame: bytes, xid: int) -> _Reply | None:
        if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
            return None
        ihl = (frame[14] & 0x0F) * 4
        udp = 14 + ihl
        if struct.unpack_from("!H", frame, udp + 2)[0] != 68:
            return None
        return self._parse(frame[udp + 8:], xid)

    def renew(self, lease: Lease) -> Lease | None:
        """RENEWING (RFC 2131 4.4.5): unicast REQUEST to the server; None if it does not ACK."""
        xid = struct.unpack("!I", os.urandom(4))[0]
        bootp = BOOTP(chaddr=self.mac, xid=xid, ciaddr=str(lease.address)) / DHCP(
            options=self._options(REQUEST, []))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            udp.bind((str(lease.address), 68))
            for attempt in range(3):
                self._check()
                self.log("udhcpc: sending renew to server " + str(lease.server))
                udp.sendto(bytes(bootp), (str(lease.server), 67))
                deadline = time.monotonic() + FIRST_RETRY_S * (attempt + 1)
                while (left := deadline - time.monotonic()) > 0:
                    self._check()
                    ready, _, _ = select.select([udp], [], [], min(left, 0.1))
                    if not ready:
                        continue
                    reply = self._parse(udp.recv(4096), xid)
                    if reply is None:
                        continue
                    if reply.kind == ACK:
                        return self._lease(reply)
                    if reply.kind == NAK:
                        return None
        return None

    def _lease(self, reply: _Reply) -> Lease:
        options = reply.options
        mask = _ip_option(options, 1)
        prefix = bin(int(mask[0])).count("1") if mask else 24
        lease_time = struct.unpack("!I", options[51])[0] if len(options.get(51, b"")) == 4 \
            else 3600
        t1 = struct.unpack("!I", options[58])[0] if len(options.get(58, b"")) == 4 \
            else lease_time / 2
        routers = _ip_option(options, 3)
        servers = _ip_option(options, 54)
        self.log(f"udhcpc: lease of {reply.yiaddr} obtained, lease time {lease_time}")
        return Lease(address=reply.yiaddr, prefix_len=prefix,
                     server=servers[0] if servers else IPv4Address("255.255.255.255"),
                     lease_time=lease_time, renew_after=float(t1),
                     router=routers[0] if routers else None,
                     dns=tuple(_ip_option(options, 6)), options=options)

    def _check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()
