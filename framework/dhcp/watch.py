"""Passive watch for foreign DHCP servers during a whole run.

The start-up probe (framework/dhcp/probe.py) catches a server that is there when we start
and answers within its window. A server plugged in mid-run, or one slower than the probe,
is only seen when it answers somebody: this watch sniffs every DHCP server message (UDP
source port 67: OFFER, ACK, NAK) on the lab interface for as long as it runs, and records
each one that is not our own server's, with who sent it, to whom, and what it offered.
The runner asks it, per case, whether a foreign server answered that case's phone since
the trigger (:meth:`ForeignDhcpWatch.seen`) and breaks the case with
:meth:`ForeignDhcpWatch.describe`; ``hil lab serve`` prints a warning line as one appears
(:meth:`ForeignDhcpWatch.subscribe`).

Ours or foreign: a message is our server's when its source MAC is one of ``own_macs``
(default: the lab interface's own MAC). A message from another MAC that names our server
address (``own_ips``) as its server id is foreign all the same: a second host answering
with our address is the worst kind of rogue, and :meth:`ForeignDhcpMessage.describe`
says it claims our address.

What a packet socket on the lab interface can see: broadcast answers always (busybox
udhcpd broadcasts every OFFER to a client without an address; clients that set the
broadcast flag get broadcast answers from every server); unicast answers to a phone only
when the frame reaches our interface. The socket asks for promiscuous mode on the
interface (by its index in the socket's own namespace, see LAB-NOTES.md: scapy's own
``promisc=True`` resolves the name in the wrong namespace), so a Linux bridge (the
simulated lab) and a hub or mirror port show unicast answers too; on a plain switch port
they do not, and a foreign server that only unicasts is then seen by the start-up probe
(which asks for broadcast answers) but not by this watch.

A message "affects" a phone when its chaddr is the phone's MAC, or when it names no
client at all (chaddr all zeros or all ones): that one is counted against every phone.

The socket is opened in the watch's own thread (setns switches one thread only), with a
BPF filter and ``select()`` around every receive so the thread notices :meth:`stop`.

Usage::

    watch = ForeignDhcpWatch("br-lab", own_ips=["192.0.2.1"], netns="hil-lab").start()
    t0 = time.time()
    ...                                   # trigger the phone
    foreign = watch.seen(t0, mac="00:90:8f:00:00:01")
    if foreign:
        reason = watch.describe(foreign)  # "foreign DHCP server 192.0.2.99 (...) sent OFFER ..."
    watch.stop()
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from framework.dhcp.packet import (
    SERVER_MESSAGES,
    SERVER_PORT,
    DhcpMessageError,
    normalise_mac,
    parse_frame,
)
from framework.dhcp.wire import open_l2, receive
from framework.errors import HilError
from framework.netns import Netns, interface_mac

log = logging.getLogger(__name__)

#: How long the thread blocks in one receive before it looks at the stop flag.
POLL_S = 0.2
#: Bound on start() (the socket opened in the thread) and stop() (the thread ended).
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
NO_CLIENT = frozenset({"00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"})
_PACKET_MR_PROMISC = 1
_PACKET_ADD_MEMBERSHIP = 1
_SOL_PACKET = 263


class DhcpWatchError(HilError, RuntimeError):
    """The watch could not listen on the lab interface; the message says where and why."""


@dataclass(frozen=True)
class ForeignDhcpMessage:
    """One DHCP server message on the lab interface that our server did not send."""

    time: float  # wall clock (time.time()) when it was received
    server_ip: str  # its server id (option 54), else the IP source address
    server_mac: str  # Ethernet source
    source_ip: str
    message_type: str  # OFFER, ACK or NAK
    chaddr: str  # the client it answers
    yiaddr: str  # the address offered or acknowledged (0.0.0.0 in a NAK)
    xid: int = 0  # the transaction it answers: the phone's DISCOVER/REQUEST with this xid
    claims_our_address: bool = False

    def affects(self, mac: str) -> bool:
        """Whether this message answers phone ``mac`` (or names no client: every phone)."""
        return self.chaddr in NO_CLIENT or self.chaddr == normalise_mac(mac)

    def describe(self) -> str:
        """One line: ``foreign DHCP server 192.0.2.99 (02:..) sent OFFER of 192.0.2.150 to
        00:90:8f:00:00:01 at 23:41:07.123``."""
        clock = dt.datetime.fromtimestamp(self.time).strftime("%H:%M:%S.%f")[:-3]
        claim = " (claiming our address)" if self.claims_our_address else ""
        what = self.message_type
        if self.message_type != "NAK" and self.yiaddr != "0.0.0.0":
            what += f" of {self.yiaddr}"
        return (f"foreign DHCP server {self.server_ip} ({self.server_mac}){claim} sent {what} "
                f"to {self.chaddr} at {clock}")


class ForeignDhcpWatch:
    """Sniff DHCP server messages on ``interface`` in a background thread; keep the foreign
    ones (see the module docstring for what counts as ours)."""

    def __init__(self, interface: str, *, own_macs: Iterable[str] = (),
                 own_ips: Iterable[str] = (), netns: str | None = None) -> None:
        self.interface = interface
        self.netns = netns
        self.own_macs = {normalise_mac(m) for m in own_macs}
        self.own_ips = set(own_ips)
        self._messages: list[ForeignDhcpMessage] = []
        self._listeners: list[Callable[[ForeignDhcpMessage], None]] = []
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def where(self) -> str:
        return f"{self.interface} (netns {self.netns})" if self.netns else self.interface

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> ForeignDhcpWatch:
        """Start sniffing; returns once the socket listens (or raises DhcpWatchError)."""
        if self._thread is not None:
            return self
        self._stop.clear()
        self._ready.clear()
        if self.netns is not None:
            self._thread = Netns(self.netns).thread(self._run, name="foreign-dhcp-watch")
        else:
            self._thread = threading.Thread(target=self._run, name="foreign-dhcp-watch",
                                            daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            self.stop()
            raise DhcpWatchError(f"DHCP watch on {self.where}: socket not open within "
                                 f"{START_TIMEOUT_S} s")
        if self._error is not None:
            error, self._thread = self._error, None
            raise DhcpWatchError(f"DHCP watch on {self.where}: {error}") from None
        return self

    def stop(self) -> None:
        """Stop sniffing (bounded); what was recorded stays readable."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(STOP_TIMEOUT_S)
            if thread.is_alive():
                log.warning("DHCP watch on %s did not stop within %s s", self.where,
                            STOP_TIMEOUT_S)

    def __enter__(self) -> ForeignDhcpWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- queries ----------------------------------------------------------------------

    def subscribe(self, listener: Callable[[ForeignDhcpMessage], None]) -> None:
        """Call ``listener`` (in the watch thread) with each foreign message as it comes."""
        with self._lock:
            self._listeners.append(listener)

    def seen(self, since: float = 0.0, mac: str | None = None, *, until: float | None = None,
             xids: Iterable[int] | None = None) -> list[ForeignDhcpMessage]:
        """Foreign messages received at or after ``since`` (wall clock, ``time.time()``)
        and before ``until``; with ``mac``, only those that affect that phone (its chaddr,
        or no client named); with ``xids``, only answers to those transactions (a foreign
        server that checks an address first answers a DISCOVER 2-3 s late: the phone's
        xids tie its answer to the case that sent the DISCOVER)."""
        with self._lock:
            found = [m for m in self._messages
                     if m.time >= since and (until is None or m.time < until)]
        if mac is not None:
            found = [m for m in found if m.affects(mac)]
        if xids is not None:
            wanted = set(xids)
            found = [m for m in found if m.xid in wanted]
        return found

    def wait(self, since: float = 0.0, mac: str | None = None, *,
             timeout: float) -> list[ForeignDhcpMessage]:
        """Block until :meth:`seen` has something for ``since``/``mac`` or ``timeout`` s
        pass; returns what :meth:`seen` returns then (empty on timeout)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not (found := self.seen(since, mac)):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._lock.wait(left)
        return found

    @staticmethod
    def describe(messages: list[ForeignDhcpMessage]) -> str:
        """One line for a case's reason: the first message, and how many more (and from
        which other servers) followed."""
        if not messages:
            return "no foreign DHCP server seen"
        first = messages[0].describe()
        others = sorted({f"{m.server_ip} ({m.server_mac})" for m in messages[1:]}
                        - {f"{messages[0].server_ip} ({messages[0].server_mac})"})
        more = f" (+{len(messages) - 1} more message(s)" if len(messages) > 1 else ""
        if more:
            more += f", also from {', '.join(others)})" if others else ")"
        return first + more

    # -- the thread -------------------------------------------------------------------

    def _open(self) -> Any:
        sock = open_l2(self.interface, f"udp and src port {SERVER_PORT}")
        try:
            index = socket.if_nametoindex(self.interface)  # this thread's namespace
            sock.ins.setsockopt(_SOL_PACKET, _PACKET_ADD_MEMBERSHIP,
                                struct.pack("IHH8s", index, _PACKET_MR_PROMISC, 0, b""))
        except OSError as exc:  # still sees broadcasts; say so once
            log.warning("DHCP watch on %s: no promiscuous mode (%s): unicast answers to "
                        "phones are not seen", self.where, exc)
        return sock

    def _run(self) -> None:
        try:
            if not self.own_macs:
                self.own_macs = {interface_mac(self.interface)}
            sock = self._open()
        except Exception as exc:  # reported by start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stop.is_set():
                data = receive(sock, POLL_S)
                if data is not None:
                    self.feed(data)
        finally:
            with contextlib.suppress(OSError):
                sock.close()

    def feed(self, data: bytes) -> None:
        """Judge one captured Ethernet frame (what the thread does with each; also usable
        on frames read from a pcap): record it if it is a foreign server message."""
        try:
            frame = parse_frame(data)
        except DhcpMessageError:
            return
        msg = frame.message
        if msg.op != 2 or msg.message_type not in SERVER_MESSAGES:
            return
        if frame.src_mac in self.own_macs:
            return  # our own server
        server_ip = msg.option_ip(54) or frame.src_ip
        found = ForeignDhcpMessage(
            time=time.time(), server_ip=server_ip, server_mac=frame.src_mac,
            source_ip=frame.src_ip, message_type=msg.message_type, chaddr=msg.mac,
            yiaddr=msg.yiaddr, xid=msg.xid, claims_our_address=server_ip in self.own_ips)
        log.info("on %s: %s", self.where, found.describe())
        with self._lock:
            self._messages.append(found)
            listeners = list(self._listeners)
            self._lock.notify_all()
        for listener in listeners:
            try:
                listener(found)
            except Exception:  # a listener's fault must not end the watch
                log.exception("foreign DHCP listener failed")
