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

    settings = ServerSettings.build("br0", "192.0.2.1", pool=("192.0.2.100", "192.0.2.199"),
                                    allowlist=["00:90:8f:00:00:01"], netns="hil-lab")
    with DhcpServer(settings) as dhcp:
        dhcp.set_options("00:90:8f:00:00:01", {160: b"http://192.0.2.1/;<MAC>.cfg"})
        t0 = time.time()
        ...power-cycle the phone...
        dhcp.wait_for("00:90:8f:00:00:01", "ACK", since=t0, timeout=30)

The parts: :mod:`framework.dhcp.leases` (the address plan and the RFC 2131 4.3
decisions), :mod:`framework.dhcp.reply` (reply options, destination, overload), this
module (the sockets, the serving thread, the fault knobs).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import select
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from scapy.arch.linux import L2Socket
from scapy.packet import Packet

from framework.dhcp.core import ServerCore
from framework.dhcp.leases import Decision, LeaseBook
from framework.dhcp.packet import (
    CLIENT_MESSAGES,
    SERVER_PORT,
    DhcpConfigError,
    DhcpFrame,
    DhcpMessageError,
    DhcpServerError,
    normalise_mac,
    parse_frame,
)
from framework.dhcp.reply import build_reply, reply_options
from framework.dhcp.settings import ServerSettings
from framework.dhcp.transcript import RECEIVED, DhcpMessageRecord, DhcpWaitTimeout
from framework.dhcp.wire import Wakeup, open_l2
from framework.netns import Netns, interface_mac

__all__ = [
    "DhcpConfigError",
    "DhcpMessageRecord",
    "DhcpServer",
    "DhcpServerCounters",
    "DhcpServerError",
    "DhcpWaitTimeout",
    "ServerSettings",
]

log = logging.getLogger(__name__)

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)


@dataclass(frozen=True)
class DhcpServerCounters:
    """What the server has seen: frames decoded, frames that were not DHCP, replies sent."""

    received: int
    malformed: int
    ignored: int
    replies: int


@dataclass(frozen=True)
class _Reply:
    """A decided reply, queued until it is due."""

    frame: Packet
    record: DhcpMessageRecord


class DhcpServer(ServerCore):
    """A DHCPv4 server on one interface (optionally in a netns), built on scapy.

    With ``settings.netns=None`` it serves in the namespace of the thread that calls
    :meth:`start` (a thread inside ``Netns(...).entered()`` starts it in that namespace).
    See the module docstring for the choices it makes; RFC 2131 section 4.3 for the handling.
    """

    BACKEND = "scapy"

    def __init__(self, settings: ServerSettings) -> None:
        super().__init__(settings)
        self._book = LeaseBook(settings)
        self._nak: set[str] = set()
        self._delay: dict[str, float] = {}
        self._counts = {"received": 0, "malformed": 0, "ignored": 0, "replies": 0}
        self._pending: list[tuple[float, int, _Reply]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._wake: Wakeup | None = None
        self._server_mac = ""

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> DhcpServer:
        """Bind to the interface and start answering; raises :class:`DhcpServerError` if it cannot."""
        if self._thread is not None:
            return self
        self._stopping.clear()
        self._started.clear()
        self._start_error = None
        netns = self.settings.netns
        if netns is not None and not Netns(netns).exists():
            raise DhcpServerError(f"DHCP server on {self._where()}: network namespace {netns!r} does not exist")
        self._wake = Wakeup()
        self._thread = threading.Thread(target=self._serve, name=f"dhcp-{self.settings.interface}",
                                        daemon=True)
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            self.stop()
            raise DhcpServerError(f"DHCP server on {self._where()} did not start within {START_TIMEOUT_S:g} s")
        if self._start_error is not None:
            err = self._start_error
            self.stop()
            port = f" UDP port {SERVER_PORT}" if isinstance(err, OSError) else ""
            raise DhcpServerError(f"DHCP server cannot bind{port} on {self._where()}: {err}") from err
        log.info("DHCP server on %s as %s, allowlist %d MACs", self._where(), self.settings.server_ip,
                 len(self._allow))
        return self

    def stop(self) -> None:
        """Stop answering, close the sockets; pending delayed replies are dropped."""
        thread, wake = self._thread, self._wake
        if thread is None or wake is None:
            return
        self._stopping.set()
        wake.set()
        thread.join(STOP_TIMEOUT_S)
        if thread.is_alive():
            log.error("DHCP server thread on %s did not stop within %g s", self._where(), STOP_TIMEOUT_S)
        self._thread = None
        wake.close()
        self._wake = None

    def __enter__(self) -> DhcpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _where(self) -> str:
        return self.settings.where()

    # --- fault knobs (ignore is in ServerCore) ------------------------------------------

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
        with self._lock:
            return self._book.current(time.monotonic())

    def counters(self) -> DhcpServerCounters:
        with self._lock:
            return DhcpServerCounters(**self._counts)

    def _describe_state(self) -> dict[str, Any]:
        return {
            "fault_knobs": {"ignore": sorted(self._ignore), "nak": sorted(self._nak),
                            "delay": dict(sorted(self._delay.items()))},
            "counters": dict(self._counts),
        }

    # --- the server thread --------------------------------------------------------------

    def _serve(self) -> None:
        l2: L2Socket | None = None
        udp: socket.socket | None = None
        interface = self.settings.interface
        try:
            try:
                if self.settings.netns is not None:
                    Netns(self.settings.netns).enter_for_good()  # this thread only (LAB-NOTES.md)
                self._server_mac = interface_mac(interface)
                l2 = open_l2(interface, f"udp and dst port {SERVER_PORT}")
                # Unicast renewals arrive at UDP 67: a bound socket keeps the kernel from
                # answering them with ICMP port unreachable (LAB-NOTES.md).
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                udp.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, interface.encode())
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
        wake = self._wake
        assert wake is not None
        while not self._stopping.is_set():
            timeout = 1.0
            if self._pending:
                timeout = max(0.0, self._pending[0][0] - time.monotonic())
            fds = [l2.ins.fileno(), udp.fileno(), wake.fileno()]
            readable, _, _ = select.select(fds, [], [], timeout)
            if fds[0] in readable:
                self._receive(l2)
            if fds[1] in readable:
                try:
                    while udp.recv(4096):  # the L2 socket already saw these: drain only
                        pass
                except BlockingIOError:
                    pass
            if fds[2] in readable:
                wake.drain()
            self._send_due(l2)

    def _count(self, what: str) -> None:
        with self._lock:
            self._counts[what] += 1

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
            self._count("malformed")
            log.debug("DHCP server on %s: dropped a malformed packet: %s", self._where(), exc)
            return
        except Exception:  # never let one packet stop the server
            self._count("malformed")
            log.exception("DHCP server on %s: packet decoding failed", self._where())
            return
        try:
            self._handle(frame)
        except Exception:
            self._count("malformed")
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
            self._count("replies")
            self._transcript.append(stamped)

    # --- one client message -------------------------------------------------------------

    def _handle(self, frame: DhcpFrame) -> None:
        msg = frame.message
        self._count("received")

        def record(*, ignored: bool = False, note: str = "") -> None:
            if ignored:
                self._count("ignored")
            self._transcript.append(DhcpMessageRecord.from_message(
                msg, direction=RECEIVED, source=frame.src_ip, destination=frame.dst_ip,
                ignored=ignored, note=note))

        if msg.op != 1 or msg.message_type not in CLIENT_MESSAGES:
            record(ignored=True, note=f"not a client message (op {msg.op}, {msg.message_type})")
            return
        why = self._ignored_because(msg.mac)
        if why:
            record(ignored=True, note=why)
            if msg.mac not in self._allow:
                log.info("DHCP %s from %s ignored: not on the allowlist", msg.message_type, msg.mac)
            return
        with self._lock:
            decision = self._book.decide(msg, nak=msg.mac in self._nak, now=time.monotonic())
        record(note=decision.note)
        if decision.reply is not None:
            self._queue_reply(frame, decision)

    def _queue_reply(self, frame: DhcpFrame, decision: Decision) -> None:
        msg = frame.message
        with self._lock:
            option_set = dict(self._options.get(msg.mac, {}))
            delay = self._delay.get(msg.mac, 0.0)
        options = reply_options(self.settings, msg, decision, option_set)
        out, record = build_reply(self.settings, self._server_mac, frame, decision, options)
        due = time.monotonic() + delay
        heapq.heappush(self._pending, (due, next(self._seq), _Reply(out, record)))
