"""SIP NOTIFY ``Event: check-sync``: how a PBX asks a 400HD to check its configuration now.

PBXs ship it as "audiocodes-check-cfg" (REAL-PHONE.md, "Control paths"): the phone answers
``200 OK`` and re-runs DHCP and provisioning without a reboot. This is an RFC 3261 17.1.2
non-INVITE client transaction over UDP, nothing more: the request is sent at once and
again at T1, 2*T1, ... up to T2 apart until a final response comes or Timer F (64*T1)
expires; a response belongs to it only when its Call-ID, CSeq (number and method) and top
Via branch are ours (17.1.3). A 1xx is noted and changes nothing but the retransmission
interval (T2, 17.1.2.2); a 2xx is success; any other final is a ``PhoneError`` naming its
status line; silence until Timer F is one naming the address and the transmissions.

Usage::

    answer = send_check_sync("192.0.2.11", 5060, mac="00908F000001")
    answer.status                       # 'SIP/2.0 200 OK'

The socket is created in the calling thread, so in its network namespace.
"""

from __future__ import annotations

import logging
import secrets
import socket
import time
from dataclasses import dataclass

from framework.phone.errors import PhoneError

log = logging.getLogger(__name__)

#: RFC 3261 17.1.1.1: T1 (an RTT estimate) and T2 (the longest retransmit interval)
T1 = 0.5
T2 = 4.0
#: Compact header forms (RFC 3261 7.3.3) of the headers a response is matched by.
_COMPACT = {"v": "via", "i": "call-id", "f": "from", "t": "to", "l": "content-length"}


@dataclass(frozen=True)
class NotifyEvidence:
    """A check-sync NOTIFY the phone answered: when it was first sent (``time.time()``),
    when the final answer came, its status line, how often it was sent, its Call-ID and the
    provisional (1xx) status lines seen before it."""

    sent_at: float
    answered_at: float
    status: str
    transmissions: int
    call_id: str
    provisional: tuple[str, ...] = ()


def _local_address(host: str, port: int) -> str:
    """The address this host sends from towards ``host`` (the route's source; no packet)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect((host, port))
        return str(probe.getsockname()[0])
    finally:
        probe.close()


def notify_request(host: str, port: int, *, user: str, ours: tuple[str, int], branch: str,
                   call_id: str, tag: str, event: str = "check-sync") -> bytes:
    """The NOTIFY as the PBXs send it (``Subscription-State`` included: some phones need
    it, none refuse it)."""
    addr, our_port = ours
    lines = [f"NOTIFY sip:{user}@{host}:{port} SIP/2.0",
             f"Via: SIP/2.0/UDP {addr}:{our_port};branch={branch};rport",
             "Max-Forwards: 70",
             f"From: <sip:hil@{addr}>;tag={tag}",
             f"To: <sip:{user}@{host}>",
             f"Call-ID: {call_id}",
             "CSeq: 1 NOTIFY",
             f"Event: {event}",
             "Subscription-State: terminated;reason=noresource",
             "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


@dataclass(frozen=True)
class _Response:
    status: str
    code: int
    headers: dict[str, list[str]]


def _parse_response(data: bytes) -> _Response | None:
    """A SIP response's status line and headers (lower-case, compact forms expanded);
    None for anything that is not one (a request, garbage)."""
    text = data.decode("utf-8", errors="replace")
    head = text.split("\r\n\r\n", 1)[0].split("\n\n", 1)[0]
    lines = [line.rstrip("\r") for line in head.split("\n")]
    status = lines[0].strip()
    parts = status.split(None, 2)
    if len(parts) < 2 or not parts[0].upper().startswith("SIP/2.0") or not parts[1].isdigit():
        return None
    headers: dict[str, list[str]] = {}
    name = ""
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and name:  # folded continuation (RFC 3261 7.3.1)
            headers[name][-1] += " " + line.strip()
            continue
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        name = key.strip().lower()
        name = _COMPACT.get(name, name)
        headers.setdefault(name, []).append(value.strip())
    return _Response(status, int(parts[1]), headers)


def _top_branch(headers: dict[str, list[str]]) -> str | None:
    vias = headers.get("via")
    if not vias:
        return None
    top = vias[0].split(",", 1)[0]
    for param in top.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "branch":
            return value.strip()
    return None


def _ours(response: _Response, call_id: str, branch: str) -> bool:
    """RFC 3261 17.1.3: the same Via branch and CSeq method; and the same Call-ID and CSeq
    number (one request per transaction here, so both must be ours)."""
    cseq = (response.headers.get("cseq") or [""])[0].split()
    return (_top_branch(response.headers) == branch
            and (response.headers.get("call-id") or [""])[0] == call_id
            and cseq == ["1", "NOTIFY"])


def send_check_sync(host: str, port: int = 5060, *, mac: str, t1: float = T1,
                    t2: float | None = None, event: str = "check-sync") -> NotifyEvidence:
    """Send ``NOTIFY`` with ``Event: check-sync`` to ``host:port`` (``mac`` as the user
    part) and run its client transaction to the end; see the module docstring.

    ``t2`` defaults to 8*``t1`` (4 s for the standard 0.5 s), so a shortened T1 keeps the
    standard's schedule: 11 transmissions within Timer F.
    """
    t2 = 8 * t1 if t2 is None else t2
    ours_ip = _local_address(host, port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((ours_ip, 0))
        ours = (ours_ip, int(sock.getsockname()[1]))
        branch = "z9hG4bK" + secrets.token_hex(8)
        call_id = f"{secrets.token_hex(8)}@{ours_ip}"
        request = notify_request(host, port, user=mac.replace(":", "").upper(), ours=ours,
                                 branch=branch, call_id=call_id, tag=secrets.token_hex(4),
                                 event=event)
        return _transaction(sock, (host, port), request, call_id, branch, t1, t2)
    except OSError as exc:
        raise PhoneError(f"SIP NOTIFY check-sync to {host}:{port}: {exc.strerror or exc}"
                         ) from None
    finally:
        sock.close()


def _transaction(sock: socket.socket, to: tuple[str, int], request: bytes, call_id: str,
                 branch: str, t1: float, t2: float) -> NotifyEvidence:
    """Timers E and F of RFC 3261 17.1.2.2, on one clock: transmission ``n`` is due at its
    scheduled time even when the process ran late, so the count depends on T1 alone."""
    start = time.monotonic()
    sent_at = time.time()
    timer_f = start + 64 * t1
    interval, next_at = t1, start
    transmissions = 0
    provisional: list[str] = []
    while True:
        now = time.monotonic()
        while next_at <= now and next_at < timer_f:
            sock.sendto(request, to)
            transmissions += 1
            log.debug("NOTIFY check-sync to %s:%d, transmission %d", *to, transmissions)
            next_at += interval
            interval = min(2 * interval, t2)
        wait = min(next_at, timer_f) - time.monotonic()
        if wait <= 0 and next_at >= timer_f:
            raise PhoneError(f"no answer to SIP NOTIFY check-sync at {to[0]}:{to[1]} after "
                             f"{transmissions} transmissions (Timer F, {64 * t1:g} s)")
        if wait <= 0:
            continue
        sock.settimeout(wait)
        try:
            data, peer = sock.recvfrom(65535)
        except TimeoutError:
            continue
        response = _parse_response(data)
        if response is None or not _ours(response, call_id, branch):
            log.debug("ignored a datagram from %s:%d that answers no request of ours: %r",
                      *peer, data[:80])
            continue
        if response.code < 200:
            log.info("%s:%d answered check-sync with %s", *peer, response.status)
            if not provisional:  # Proceeding: retransmit every T2 from now on
                interval = t2
            provisional.append(response.status)
            continue
        answered_at = time.time()
        if response.code >= 300:
            raise PhoneError(f"SIP NOTIFY check-sync refused by {to[0]}:{to[1]}: "
                             f"{response.status}")
        log.info("%s:%d accepted check-sync: %s", *peer, response.status)
        return NotifyEvidence(sent_at, answered_at, response.status, transmissions, call_id,
                              tuple(provisional))
