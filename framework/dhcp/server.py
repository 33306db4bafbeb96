"""The controllable DHCPv4 server: scapy on one interface, per-MAC option sets, fault knobs.

Lab tests hand each phone exactly the options a case needs (160, 66/67, 43, ...), see
what the phone asked for, and inject faults (no answer, late answer, NAK). The server
answers only MACs on its allowlist and binds to one interface, optionally inside a named
network namespace (ARCHITECTURE.md, "Safety": a stray DHCP server is an outage).

Choices, documented because lab engineers will ask:

- Every option in a MAC's option set is sent whether or not the client listed it in
  option 55 (so 66, 67, 160 or any URL code, and 43 always reach the phone exactly as
  set); the base options (1, 3, 6, 15, 51, 54, 58, 59) are always sent too. What the
  client asked for is in the transcript, so a test can still check option 55.
- An option set entry replaces the base option of the same code (a case may set 3).
- Values over 255 bytes go out as RFC 3396 split instances. A reply larger than the
  client accepts (576 bytes, RFC 2131 section 2, or its option 57) overflows into the
  ``file``/``sname`` fields with option 52 (RFC 2131 4.1): BusyBox udhcpc, which the 3.x
  phones run, drops bigger replies. The transcript note says when that happened.
- Option 61 from the client is echoed (RFC 6842).
- A REQUEST naming another server's identifier is not answered: RFC 2131 4.3.2 says the
  client declined our offer, and NAKing it would fight a second server. A REQUEST for a
  wrong address (SELECTING with an address we did not offer, INIT-REBOOT with an address
  that is not the client's, RENEWING/REBINDING a lease the client does not hold) gets
  a NAK (RFC 2131 4.3.2).
- A delayed reply is computed when the request arrives and sent ``delay`` seconds later.

Usage::

    with DhcpServer("br0", "192.0.2.1", pool=("192.0.2.100", "192.0.2.199"),
                    allowlist=["00:90:8f:00:00:01"], netns="hil-lab") as dhcp:
        dhcp.set_options("00:90:8f:00:00:01", {160: b"http://192.0.2.1/;<MAC>.cfg"})
        t0 = time.time()
        ...power-cycle the phone...
        dhcp.wait_for("00:90:8f:00:00:01", "ACK", since=t0, timeout=30)
"""

from __future__ import annotations

import dataclasses
import heapq
import ipaddress
import itertools
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scapy.arch.linux import L2Socket
from scapy.packet import Packet

from framework.dhcp.options import OptionCodecError, OptionSet, encoded_length
from framework.dhcp.packet import (
    BOOTP_FIXED,
    BROADCAST_IP,
    BROADCAST_MAC,
    CLIENT_MESSAGES,
    CLIENT_PORT,
    MESSAGE_CODES,
    SERVER_PORT,
    ZERO_IP,
    DhcpConfigError,
    DhcpFrame,
    DhcpMessage,
    DhcpMessageError,
    DhcpServerError,
    build_frame,
    normalise_mac,
    parse_frame,
)
from framework.dhcp.settings import ServerSettings, check_option_set
from framework.dhcp.transcript import (
    RECEIVED,
    SENT,
    DhcpMessageRecord,
    DhcpWaitTimeout,
    Subscriber,
    Transcript,
    export_transcript,
)
from framework.dhcp.wire import open_l2
from framework.netns import Netns, interface_mac

__all__ = [
    "DhcpConfigError",
    "DhcpMessageRecord",
    "DhcpServer",
    "DhcpServerCounters",
    "DhcpServerError",
    "DhcpWaitTimeout",
]

log = logging.getLogger(__name__)

OFFER_HOLD_S = 60.0  # an offered address stays reserved for the client this long
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
MIN_DATAGRAM = 576  # every client accepts a DHCP datagram this large (RFC 2131 section 2)
IP_UDP_HEADERS = 28


@dataclass(frozen=True)
class DhcpServerCounters:
    """What the server has seen: frames decoded, frames that were not DHCP, replies sent."""

    received: int
    malformed: int
    ignored: int
    replies: int


@dataclass(frozen=True)
class _Lease:
    ip: ipaddress.IPv4Address
    expires: float


@dataclass(frozen=True)
class _Decision:
    """What to answer a client message: reply type (None: no reply), address and why."""

    reply: str | None
    yiaddr: str = ZERO_IP
    note: str = ""
    lease_options: bool = True  # 51/58/59; not in a NAK or an ACK to INFORM


@dataclass(frozen=True)
class _Reply:
    """A decided reply, queued until it is due."""

    frame: Packet
    record: DhcpMessageRecord


class DhcpServer:
    """A DHCPv4 server on one interface (optionally in a netns), built on scapy.

    With ``netns=None`` it serves in the namespace of the thread that calls :meth:`start`
    (a thread inside ``Netns(...).entered()`` starts it in that namespace). See the
    module docstring for the choices it makes; RFC 2131 section 4.3 for the handling.
    """

    def __init__(
        self,
        interface: str,
        server_ip: str,
        *,
        netmask: str = "255.255.255.0",
        pool: tuple[str, str] | None = None,
        fixed: Mapping[str, str] | None = None,
        allowlist: Iterable[str] = (),
        router: str | None = None,
        dns: Iterable[str] = (),
        domain: str | None = None,
        lease_time: int = 600,
        netns: str | None = None,
    ) -> None:
        self.settings = ServerSettings.build(
            interface, server_ip, netmask=netmask, pool=pool, fixed=fixed, allowlist=allowlist,
            router=router, dns=dns, domain=domain, lease_time=lease_time, netns=netns,
        )
        self.interface = interface
        self.netns = netns
        self.server_ip = self.settings.server_ip
        self.network = self.settings.network
        self.pool = self.settings.pool
        self._fixed = dict(self.settings.fixed)
        self.lease_time = lease_time

        self._lock = threading.RLock()
        self._allow = set(self.settings.allowlist)
        self._options: dict[str, OptionSet] = {}
        self._leases: dict[str, _Lease] = {}
        self._offers: dict[str, _Lease] = {}
        self._declined: set[ipaddress.IPv4Address] = set()
        self._ignore: set[str] = set()
        self._nak: set[str] = set()
        self._delay: dict[str, float] = {}
        self._counts = {"received": 0, "malformed": 0, "ignored": 0, "replies": 0}
        self._transcript = Transcript()
        self._pending: list[tuple[float, int, _Reply]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._wake_r, self._wake_w = -1, -1
        self._server_mac = ""

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> DhcpServer:
        """Bind to the interface and start answering; raises :class:`DhcpServerError` if it cannot."""
        if self._thread is not None:
            return self
        self._stopping.clear()
        self._started.clear()
        self._start_error = None
        if self.netns is not None and not Netns(self.netns).exists():
            raise DhcpServerError(f"DHCP server on {self._where()}: network namespace {self.netns!r} does not exist")
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._serve, name=f"dhcp-{self.interface}", daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            self.stop()
            raise DhcpServerError(f"DHCP server on {self._where()} did not start within {START_TIMEOUT_S:g} s")
        if self._start_error is not None:
            err = self._start_error
            self.stop()
            port = f" UDP port {SERVER_PORT}" if isinstance(err, OSError) else ""
            raise DhcpServerError(f"DHCP server cannot bind{port} on {self._where()}: {err}") from err
        log.info("DHCP server on %s as %s, allowlist %d MACs", self._where(), self.server_ip, len(self._allow))
        return self

    def stop(self) -> None:
        """Stop answering, close the sockets; pending delayed replies are dropped."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            log.error("DHCP server thread on %s did not stop within %g s", self._where(), STOP_TIMEOUT_S)
        self._thread = None
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._wake_r, self._wake_w = -1, -1

    def __enter__(self) -> DhcpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _where(self) -> str:
        return self.settings.where()

    # --- per-MAC control ----------------------------------------------------------------

    def set_options(self, mac: str, options: Mapping[int, bytes]) -> None:
        """Replace the option set ``mac`` gets; takes effect on the next reply.

        ``b""`` is sent as a present-but-empty option; leave a code out to not send it.
        """
        key, checked = check_option_set(mac, options)
        with self._lock:
            self._options[key] = checked

    def clear(self, mac: str) -> None:
        """Forget the option set of ``mac`` (it then gets only the base options)."""
        with self._lock:
            self._options.pop(normalise_mac(mac), None)

    def allow(self, mac: str) -> None:
        with self._lock:
            self._allow.add(normalise_mac(mac))

    def disallow(self, mac: str) -> None:
        with self._lock:
            self._allow.discard(normalise_mac(mac))

    # --- fault knobs --------------------------------------------------------------------

    def ignore(self, mac: str, enabled: bool = True) -> None:
        """Fault knob: receive and record, but never answer ``mac``."""
        key = normalise_mac(mac)
        with self._lock:
            (self._ignore.add if enabled else self._ignore.discard)(key)

    def delay(self, mac: str, seconds: float) -> None:
        """Fault knob: send every reply to ``mac`` ``seconds`` late (0 removes the delay)."""
        key = normalise_mac(mac)
        if seconds < 0:
            raise DhcpConfigError(f"delay for {key}: {seconds!r} s is negative")
        with self._lock:
            if seconds:
                self._delay[key] = float(seconds)
            else:
                self._delay.pop(key, None)

    def nak(self, mac: str, enabled: bool = True) -> None:
        """Fault knob: answer every REQUEST from ``mac`` with a NAK (DISCOVERs still get offers)."""
        key = normalise_mac(mac)
        with self._lock:
            (self._nak.add if enabled else self._nak.discard)(key)

    def reset_faults(self, mac: str | None = None) -> None:
        """Remove the ignore, delay and NAK knobs for ``mac`` (or for every MAC)."""
        with self._lock:
            if mac is None:
                self._ignore.clear()
                self._nak.clear()
                self._delay.clear()
                return
            key = normalise_mac(mac)
            self._ignore.discard(key)
            self._nak.discard(key)
            self._delay.pop(key, None)

    # --- what happened ------------------------------------------------------------------

    def leases(self) -> dict[str, str]:
        """Current (unexpired) leases: MAC -> address."""
        now = time.monotonic()
        with self._lock:
            return {mac: str(lease.ip) for mac, lease in self._leases.items() if lease.expires > now}

    def mac_for_ip(self, ip: str) -> str | None:
        """The MAC holding a lease on ``ip`` (or with it as fixed address), else None."""
        try:
            wanted = ipaddress.IPv4Address(ip)
        except ValueError:
            return None
        now = time.monotonic()
        with self._lock:
            for mac, lease in self._leases.items():
                if lease.ip == wanted and lease.expires > now:
                    return mac
            for mac, fixed in self._fixed.items():
                if fixed == wanted:
                    return mac
        return None

    def transcript(self, mac: str | None = None) -> list[DhcpMessageRecord]:
        """Every message received from and sent to ``mac`` (or everyone), in order."""
        return self._transcript.records(mac)

    def wait_for(self, mac: str | None, msg_type: str = "DISCOVER", *, since: float,
                 timeout: float) -> DhcpMessageRecord:
        """Block until ``mac`` sends (or is sent) ``msg_type`` at/after ``since`` (time.time()).

        An event wait on the transcript; raises :class:`DhcpWaitTimeout` (a TimeoutError)
        naming the MAC and message type awaited.
        """
        return self._transcript.wait_for(mac, msg_type, since=since, timeout=timeout)

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(record)`` for every transcript record; returns an unsubscribe function."""
        return self._transcript.subscribe(callback)

    def counters(self) -> DhcpServerCounters:
        with self._lock:
            return DhcpServerCounters(**self._counts)

    def describe(self) -> dict[str, Any]:
        """The server's configuration and state as JSON-ready data (for evidence)."""
        with self._lock:
            return {
                "backend": "scapy",
                **self.settings.to_dict(),
                "allowlist": sorted(self._allow),
                "option_sets": {m: {str(c): v.hex() for c, v in o.items()}
                                for m, o in sorted(self._options.items())},
                "fault_knobs": {"ignore": sorted(self._ignore), "nak": sorted(self._nak),
                                "delay": dict(sorted(self._delay.items()))},
                "counters": dict(self._counts),
            }

    def export_json(self, path: str | os.PathLike[str] | None = None, mac: str | None = None) -> str:
        """The transcript (optionally one MAC's) with the server settings, as JSON; written to ``path``."""
        return export_transcript(path, server=self.describe(), records=self.transcript(mac))

    # --- the server thread --------------------------------------------------------------

    def _serve(self) -> None:
        l2: L2Socket | None = None
        udp: socket.socket | None = None
        try:
            try:
                if self.netns is not None:
                    Netns(self.netns).enter_for_good()  # this thread only (LAB-NOTES.md)
                self._server_mac = interface_mac(self.interface)
                l2 = open_l2(self.interface, f"udp and dst port {SERVER_PORT}")
                # Unicast renewals arrive at UDP 67: a bound socket keeps the kernel from
                # answering them with ICMP port unreachable (LAB-NOTES.md).
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                udp.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, self.interface.encode())
                udp.bind(("0.0.0.0", SERVER_PORT))
                udp.setblocking(False)
            except BaseException as exc:
                self._start_error = exc
                return
            finally:
                self._started.set()
            self._loop(l2, udp)
        finally:
            if l2 is not None:
                l2.close()
            if udp is not None:
                udp.close()

    def _loop(self, l2: L2Socket, udp: socket.socket) -> None:
        while not self._stopping.is_set():
            timeout = 1.0
            if self._pending:
                timeout = max(0.0, self._pending[0][0] - time.monotonic())
            fds = [l2.ins.fileno(), udp.fileno(), self._wake_r]
            readable, _, _ = select.select(fds, [], [], timeout)
            if fds[0] in readable:
                self._receive(l2)
            if fds[1] in readable:
                try:
                    while udp.recv(4096):  # the L2 socket already saw these: drain only
                        pass
                except BlockingIOError:
                    pass
            if self._wake_r in readable:
                os.read(self._wake_r, 64)
            self._send_due(l2)

    def _receive(self, l2: L2Socket) -> None:
        try:
            _, data, _ = l2.recv_raw()
        except OSError as exc:
            log.warning("DHCP server on %s: receive failed: %s", self._where(), exc)
            return
        if not data:
            return  # our own outgoing frame
        try:
            frame = parse_frame(data)
        except DhcpMessageError as exc:
            with self._lock:
                self._counts["malformed"] += 1
            log.debug("DHCP server on %s: dropped a malformed packet: %s", self._where(), exc)
            return
        except Exception:  # never let one packet stop the server
            with self._lock:
                self._counts["malformed"] += 1
            log.exception("DHCP server on %s: packet decoding failed", self._where())
            return
        try:
            self._handle(frame)
        except Exception:
            with self._lock:
                self._counts["malformed"] += 1
            log.exception("DHCP server on %s: handling %s from %s failed", self._where(),
                          frame.message.message_type, frame.message.mac)

    def _send_due(self, l2: L2Socket) -> None:
        now = time.monotonic()
        while self._pending and self._pending[0][0] <= now:
            _, _, reply = heapq.heappop(self._pending)
            # Stamped before it leaves: the client may act on it (and its requests be
            # logged) before this thread runs again, and a lease must never look younger
            # than what the client did with it.
            sent_at = time.time()
            try:
                l2.send(reply.frame)
            except OSError as exc:
                log.error("DHCP server on %s: sending %s to %s failed: %s", self._where(),
                          reply.record.message_type, reply.record.mac, exc)
                continue
            stamped = dataclasses.replace(reply.record, time=sent_at)  # when it left
            with self._lock:
                self._counts["replies"] += 1
            self._transcript.append(stamped)

    # --- RFC 2131 4.3: what to answer ---------------------------------------------------

    def _handle(self, frame: DhcpFrame) -> None:
        msg = frame.message
        with self._lock:
            self._counts["received"] += 1

        def record(*, ignored: bool = False, note: str = "") -> None:
            if ignored:
                with self._lock:
                    self._counts["ignored"] += 1
            self._transcript.append(DhcpMessageRecord.from_message(
                msg, direction=RECEIVED, source=frame.src_ip, destination=frame.dst_ip,
                ignored=ignored, note=note))

        if msg.op != 1 or msg.message_type not in CLIENT_MESSAGES:
            record(ignored=True, note=f"not a client message (op {msg.op}, {msg.message_type})")
            return
        with self._lock:
            allowed = msg.mac in self._allow
            knob_ignore = msg.mac in self._ignore
        if not allowed:
            record(ignored=True, note="MAC not on the allowlist")
            log.info("DHCP %s from %s ignored: not on the allowlist", msg.message_type, msg.mac)
            return
        if knob_ignore:
            record(ignored=True, note="fault knob: ignore")
            return
        with self._lock:
            decision = self._decide(msg)
        record(note=decision.note)
        if decision.reply is not None:
            self._queue_reply(frame, decision)

    def _decide(self, msg: DhcpMessage) -> _Decision:
        """What to answer a client message (RFC 2131 4.3); called with the lock held."""
        now = time.monotonic()
        mac = msg.mac
        requested = msg.option_ip(50)
        server_id = msg.option_ip(54)
        if msg.message_type == "DISCOVER":
            ip = self._address_for(mac, requested, now)
            if ip is None:
                return _Decision(None, note="no address for this client (no fixed address, pool exhausted or absent)")
            self._offers[mac] = _Lease(ip, now + OFFER_HOLD_S)
            return _Decision("OFFER", str(ip), f"offer {ip}")
        if msg.message_type == "REQUEST":
            return self._decide_request(msg, requested, server_id, now)
        if msg.message_type == "DECLINE":
            if requested is not None:
                ip = ipaddress.IPv4Address(requested)
                self._declined.add(ip)
                for table in (self._leases, self._offers):
                    if mac in table and table[mac].ip == ip:
                        del table[mac]
                return _Decision(None, note=f"declined {ip}: not offered again")
            return _Decision(None, note="DECLINE without option 50: nothing to do")
        if msg.message_type == "RELEASE":
            lease = self._leases.get(mac)
            if lease is not None and str(lease.ip) == msg.ciaddr:
                del self._leases[mac]
                return _Decision(None, note=f"released {msg.ciaddr}")
            return _Decision(None, note=f"RELEASE of {msg.ciaddr}, which {mac} does not hold")
        # INFORM: configuration only, no address (RFC 2131 4.3.5)
        return _Decision("ACK", note="INFORM answered", lease_options=False)

    def _decide_request(self, msg: DhcpMessage, requested: str | None, server_id: str | None,
                        now: float) -> _Decision:
        mac = msg.mac
        if mac in self._nak:
            return _Decision("NAK", note="fault knob: nak")
        bound = self._bound_address(mac, now)
        if server_id is not None:  # SELECTING
            if server_id != str(self.server_ip):
                self._offers.pop(mac, None)
                return _Decision(None, note=f"REQUEST for server {server_id}: the client chose another server")
            offered = self._offers.get(mac)
            expected = offered.ip if offered is not None else bound
            if requested is None:
                return _Decision("NAK", note="SELECTING REQUEST without option 50")
            if expected is None or str(expected) != requested:
                return _Decision("NAK", note=f"requested {requested}, but offered {expected}")
            return self._ack(mac, expected, now)
        if requested is not None:  # INIT-REBOOT
            ip = ipaddress.IPv4Address(requested)
            if ip not in self.network:
                return _Decision("NAK", note=f"INIT-REBOOT for {ip}: wrong network (we serve {self.network})")
            if bound is not None:
                if ip != bound:
                    return _Decision("NAK", note=f"INIT-REBOOT for {ip}, but the client's address is {bound}")
                return self._ack(mac, ip, now)
            if self._is_free(ip, mac, now) and self._in_pool(ip):
                return self._ack(mac, ip, now)
            return _Decision("NAK", note=f"INIT-REBOOT for {ip}: not a free pool address")
        if msg.ciaddr != ZERO_IP:  # RENEWING (unicast) or REBINDING (broadcast)
            if bound is not None and str(bound) == msg.ciaddr:
                return self._ack(mac, bound, now)
            return _Decision("NAK", note=f"renewing {msg.ciaddr}, but the client's address is {bound}")
        return _Decision("NAK", note="REQUEST without server id, requested address or ciaddr")

    def _ack(self, mac: str, ip: ipaddress.IPv4Address, now: float) -> _Decision:
        self._offers.pop(mac, None)
        self._leases[mac] = _Lease(ip, now + self.lease_time)
        return _Decision("ACK", str(ip), f"lease {ip} for {self.lease_time} s")

    def _bound_address(self, mac: str, now: float) -> ipaddress.IPv4Address | None:
        if mac in self._fixed:
            return self._fixed[mac]
        lease = self._leases.get(mac)
        if lease is not None and lease.expires > now:
            return lease.ip
        return None

    def _in_pool(self, ip: ipaddress.IPv4Address) -> bool:
        return self.pool is not None and self.pool[0] <= ip <= self.pool[1]

    def _is_free(self, ip: ipaddress.IPv4Address, mac: str, now: float) -> bool:
        if ip == self.server_ip or ip in self._declined:
            return False
        if any(f == ip and m != mac for m, f in self._fixed.items()):
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
        if self.pool is None:
            return None
        for value in range(int(self.pool[0]), int(self.pool[1]) + 1):
            ip = ipaddress.IPv4Address(value)
            if self._is_free(ip, mac, now):
                return ip
        return None

    # --- building replies ---------------------------------------------------------------

    def _reply_options(self, msg: DhcpMessage, decision: _Decision) -> OptionSet:
        assert decision.reply is not None
        opts: OptionSet = {53: bytes((MESSAGE_CODES[decision.reply],)), 54: self.server_ip.packed}
        if 61 in msg.options:
            opts[61] = msg.options[61]  # RFC 6842: echo the client identifier
        if decision.reply == "NAK":
            opts[56] = decision.note.encode("ascii", "replace")[:255]  # RFC 2131 Table 3
            return opts
        if decision.lease_options:
            opts[51] = self.lease_time.to_bytes(4, "big")
            opts[58] = (self.lease_time // 2).to_bytes(4, "big")
            opts[59] = (self.lease_time * 7 // 8).to_bytes(4, "big")
        opts[1] = self.network.netmask.packed
        if self.settings.router is not None:
            opts[3] = self.settings.router.packed
        if self.settings.dns:
            opts[6] = b"".join(d.packed for d in self.settings.dns)
        if self.settings.domain:
            opts[15] = self.settings.domain.encode("ascii")
        with self._lock:
            opts.update(self._options.get(msg.mac, {}))
        return opts

    def _queue_reply(self, frame: DhcpFrame, decision: _Decision) -> None:
        msg = frame.message
        kind, yiaddr, note = decision.reply, decision.yiaddr, decision.note
        assert kind is not None
        options = self._reply_options(msg, decision)
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
                src_mac=self._server_mac, dst_mac=dst_mac, src_ip=str(self.server_ip),
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
            ciaddr=ciaddr, yiaddr=yiaddr, source=str(self.server_ip), destination=dst_ip,
            options=options, note=reply_note,
        )
        with self._lock:
            delay = self._delay.get(msg.mac, 0.0)
        due = time.monotonic() + delay
        heapq.heappush(self._pending, (due, next(self._seq), _Reply(out, record)))
