"""The virtual phone's SIP user agent: what a PBX or the lab uses to make it check its
provisioning without a reboot (REAL-PHONE.md "Control paths": NOTIFY ``Event: check-sync``).

It listens on UDP 5060 of the phone's leased address, inside the phone's namespace, only
while the phone has that address (started and stopped with the SSH server). Answers:

- NOTIFY with ``Event: check-sync`` (parameters such as ``;reboot=false`` allowed):
  ``200 OK``, then the phone re-runs DHCP and provisioning (``VirtualPhone.check_sync``);
- NOTIFY with another event: ``489 Bad Event`` (RFC 6665 8.2.1), with ``Allow-Events``;
- OPTIONS: ``200 OK``; any other request: ``501 Not Implemented``.

A retransmission (same Via branch, CSeq and Call-ID: RFC 3261 17.2.2, the server
transaction) gets the same response again and starts nothing new. Responses copy Via,
From, To (with a To tag added), Call-ID and CSeq (RFC 3261 8.2.6.2) and go back to the
source address: its port when the top Via asks for ``rport`` (RFC 3581), else the Via's
sent-by port. Malformed datagrams and responses are logged and dropped; they never stop
the agent.
"""

from __future__ import annotations

import logging
import re
import secrets
import select
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from framework.errors import HilError

log = logging.getLogger(__name__)
SIP_PORT = 5060
#: how long a server transaction remembers its response (Timer J = 64*T1, RFC 3261 17.2.2)
TRANSACTION_S = 32.0
MAX_TRANSACTIONS = 256
ALLOW = "NOTIFY, OPTIONS"
_COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "o": "event",
            "l": "content-length", "m": "contact"}
_CSEQ = re.compile(r"^\s*(\d+)\s+([A-Za-z]+)\s*$")
_SENT_BY = re.compile(r"^SIP/2\.0/[A-Za-z]+\s+(\[[^\]]+\]|[^\s:;]+)(?::(\d+))?", re.IGNORECASE)


class SipTarget(Protocol):
    """What the agent drives on the phone."""

    model: str
    mac: str

    @property
    def version(self) -> str: ...

    def check_sync(self, reason: str = "") -> None: ...


class MalformedRequest(HilError, ValueError):
    """A datagram that is no SIP request the agent can answer (dropped, never answered)."""


@dataclass(frozen=True)
class SipRequest:
    """One parsed request: the start line and the headers a response needs."""

    method: str
    uri: str
    headers: list[tuple[str, str]]   # (lower-case full name, value), in order

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def first(self, name: str) -> str:
        found = self.values(name)
        if not found:
            raise MalformedRequest(f"no {name} header")
        return found[0]

    @property
    def key(self) -> tuple[str, str, str]:
        """The server transaction: top Via branch, CSeq, Call-ID."""
        via = self.first("via")
        branch = next((p.split("=", 1)[1].strip() for p in via.split(";")[1:]
                       if p.strip().lower().startswith("branch=")), "")
        return branch, self.first("cseq").strip(), self.first("call-id").strip()


def parse_request(data: bytes) -> SipRequest:
    """A SIP request from one datagram; MalformedRequest says why it is none."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedRequest("not UTF-8") from None
    head = re.split(r"\r?\n\r?\n", text, maxsplit=1)[0]
    lines = re.split(r"\r?\n", head)
    start = lines[0].split(" ")
    if len(start) != 3 or start[2] != "SIP/2.0" or not start[0].isalpha():
        raise MalformedRequest(f"not a SIP request line: {lines[0][:80]!r}")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:   # folded continuation (RFC 3261 7.3.1)
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise MalformedRequest(f"bad header line {line[:80]!r}")
        name = name.strip().lower()
        name = _COMPACT.get(name, name)
        if name == "via":   # one header may carry several Vias
            headers.extend(("via", part.strip()) for part in value.split(",") if part.strip())
        else:
            headers.append((name, value.strip()))
    request = SipRequest(start[0].upper(), start[1], headers)
    for needed in ("via", "from", "to", "call-id", "cseq"):
        request.first(needed)
    cseq = _CSEQ.match(request.first("cseq"))
    if cseq is None or cseq.group(2).upper() != request.method:
        raise MalformedRequest(f"CSeq {request.first('cseq')!r} does not match "
                               f"{request.method}")
    if not _SENT_BY.match(request.first("via")):
        raise MalformedRequest(f"bad Via {request.first('via')!r}")
    return request


def event_type(request: SipRequest) -> str:
    """The event package of ``Event: check-sync;reboot=false`` -> ``check-sync``."""
    values = request.values("event")
    return values[0].split(";", 1)[0].strip().lower() if values else ""


def response(request: SipRequest, status: str, to_tag: str, source: tuple[str, int],
             extra: tuple[str, ...] = ()) -> bytes:
    """The response text (RFC 3261 8.2.6.2): Vias (top one with received/rport filled in),
    From, To with our tag, Call-ID, CSeq, ``extra`` header lines, no body."""
    vias = request.values("via")
    top = vias[0]
    params = top.split(";")
    if any(p.strip().lower() == "rport" for p in params[1:]):
        params = [f"rport={source[1]}" if p.strip().lower() == "rport" else p for p in params]
        params.append(f"received={source[0]}")
    vias = [";".join(params), *vias[1:]]
    to = request.first("to")
    if not re.search(r";\s*tag=", to, re.IGNORECASE):
        to = f"{to};tag={to_tag}"
    lines = [f"SIP/2.0 {status}", *(f"Via: {via}" for via in vias),
             f"From: {request.first('from')}", f"To: {to}",
             f"Call-ID: {request.first('call-id')}", f"CSeq: {request.first('cseq')}",
             *extra, "Content-Length: 0"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def reply_address(request: SipRequest, source: tuple[str, int]) -> tuple[str, int]:
    """Where the response goes: the source address; its port with ``rport``, else the
    top Via's sent-by port (RFC 3261 18.2.2, RFC 3581 4)."""
    top = request.first("via")
    if any(p.strip().lower() == "rport" for p in top.split(";")[1:]):
        return source
    match = _SENT_BY.match(top)
    port = match.group(2) if match else None
    return source[0], int(port) if port else SIP_PORT


class PhoneSipAgent:
    """The UDP SIP agent of one phone; ``start`` in the phone's namespace thread."""

    def __init__(self, phone: SipTarget) -> None:
        self.phone = phone
        self.sock: socket.socket | None = None
        self._wake: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: transaction key -> (response, when answered)
        self._answered: OrderedDict[tuple[str, str, str], tuple[bytes, float]] = OrderedDict()

    @property
    def port(self) -> int | None:
        """The bound port (tests may start on port 0)."""
        sock = self.sock
        return sock.getsockname()[1] if sock is not None else None

    def start(self, address: str, port: int = SIP_PORT) -> None:
        """Listen on ``address:port`` (UDP). SO_REUSEADDR: the phone's own SIP PnP
        SUBSCRIBE is sent from a second socket bound to the same address and port."""
        self.stop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            sock.close()
            raise
        wake, stop = socket.socketpair()
        thread = threading.Thread(target=self._serve, args=(sock, wake), daemon=True,
                                  name=f"sip-{address}")
        with self._lock:
            self.sock, self._wake, self._thread = sock, stop, thread
            self._answered.clear()
        thread.start()

    def stop(self) -> None:
        """Stop answering (reboot, power loss, address lost); the port is free on return.

        The serving thread closes the socket itself: closed from here while that thread
        sits in ``select``, the kernel would free the port only once it returned."""
        with self._lock:
            self.sock = None
            wake, self._wake = self._wake, None
            thread, self._thread = self._thread, None
        if wake is not None:
            wake.close()   # the serving thread sees EOF on its end, closes its socket, ends
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _serve(self, sock: socket.socket, wake: socket.socket) -> None:
        try:
            while True:
                try:
                    readable, _, _ = select.select([sock, wake], [], [])
                    if wake in readable:
                        return
                    data, source = sock.recvfrom(65535)
                except (OSError, ValueError):
                    return   # closed by stop()
                try:
                    self.handle(sock, data, source)
                except MalformedRequest as exc:
                    log.info("SIP from %s:%s dropped: %s", source[0], source[1], exc)
                except Exception:   # one bad datagram must not end the agent
                    log.exception("SIP from %s:%s: agent error", source[0], source[1])
        finally:
            sock.close()
            wake.close()

    def handle(self, sock: socket.socket, data: bytes, source: tuple[str, int]) -> None:
        """Answer one datagram (responses and keep-alives are dropped silently)."""
        if not data.strip() or data.startswith(b"SIP/2.0 "):
            return
        request = parse_request(data)
        if request.method == "ACK":   # never answered (RFC 3261 17.2.1)
            return
        key = request.key
        now = time.monotonic()
        with self._lock:
            for old in [k for k, (_, at) in self._answered.items() if now - at > TRANSACTION_S]:
                del self._answered[old]
            known = self._answered.get(key)
        if known is not None:   # a retransmission: the same answer, nothing started again
            log.info("SIP %s from %s:%s retransmitted: answered again", request.method,
                     *source)
            sock.sendto(known[0], reply_address(request, source))
            return
        answer, then = self._answer(request, source)
        with self._lock:
            self._answered[key] = (answer, now)
            while len(self._answered) > MAX_TRANSACTIONS:
                self._answered.popitem(last=False)
        sock.sendto(answer, reply_address(request, source))
        log.info("SIP %s from %s:%s: %s", request.method, source[0], source[1],
                 answer.split(b"\r\n", 1)[0].decode())
        if then is not None:
            then()

    def _answer(self, request: SipRequest,
                source: tuple[str, int]) -> tuple[bytes, Callable[[], None] | None]:
        tag = secrets.token_hex(6)
        agent = (f"Server: AUDC-IPPhone/{self.phone.version} "
                 f"({self.phone.model}G-Rev0; {self.phone.mac})")
        if request.method == "NOTIFY":
            event = event_type(request)
            if event != "check-sync":
                return response(request, "489 Bad Event", tag, source,
                                (agent, "Allow-Events: check-sync")), None
            call_id = request.first("call-id")
            return response(request, "200 OK", tag, source, (agent,)), \
                lambda: self.phone.check_sync(f"SIP NOTIFY check-sync from {source[0]} "
                                              f"(Call-ID {call_id})")
        if request.method == "OPTIONS":
            return response(request, "200 OK", tag, source,
                            (agent, f"Allow: {ALLOW}", "Allow-Events: check-sync")), None
        return response(request, "501 Not Implemented", tag, source,
                        (agent, f"Allow: {ALLOW}")), None
