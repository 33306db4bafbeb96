"""Health probes of the lab's own provisioning services (DNS, TFTP, HTTP(S), FTP).

A firmware verdict is given only when the rig worked: before each verdict the runner asks
whether the services the case needed still answer. A probe must never mistake a loaded
lab for a dead one (that marks good cases *broken*), and must still find a dead one fast.

How (one :class:`ServiceProbe` per lab, shared by every lane):

* **liveness first**: a service seen working recently is alive without a probe: one that
  answered a phone within the case (``alive``), one the runner saw serve any phone
  (:meth:`ServiceProbe.observed`, or every record of a request log with
  :meth:`ServiceProbe.follow`), or one a probe found alive, within ``fresh_s``;
* **one probe in flight per service**: concurrent callers wait for that probe's result
  instead of sending their own (64 lanes send one TFTP probe, not 64);
* **deadlines from measured latency**: each service keeps a smoothed round-trip time and
  its variation (RFC 6298 style) of its successful probes; an attempt waits
  ``max(floor_s, k x srtt, srtt + 4 x rttvar)``, and a silent service is asked again with
  twice the deadline (``attempts`` times, within ``budget_s`` in all). A UDP probe keeps
  one socket, so a late answer to an earlier attempt still counts;
* **fast on death**: a port nobody listens on is refused at once (TCP RST; for UDP the
  ICMP port unreachable, read through ``IP_RECVERR``), so a stopped server is a fault in
  milliseconds; a hung one within ``budget_s`` (plus ``fresh_s`` while its last liveness
  is fresh).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from framework.runner.catalogue import LAB_DNS_NAME

PORTS: dict[str, int] = {"dns": 53, "tftp": 69, "http": 80, "https": 443, "ftp": 21}
#: the order faults are looked for (the first fault found is the one reported)
ORDER = ("dns", "http", "https", "ftp", "tftp")
#: an RRQ for a name nobody serves: any TFTP reply proves the server is up
TFTP_PROBE = b"\x00\x01.hil-health-check\x00octet\x00"
_IP_RECVERR = getattr(socket, "IP_RECVERR", 11)  # Linux; not exported by Python 3.11


@dataclass
class _Service:
    name: str
    port: int
    cond: threading.Condition
    srtt: float | None = None
    rttvar: float = 0.0
    alive_at: float | None = None  # wall clock (time.time(), as request records)
    fault: str | None = None
    fault_at: float | None = None
    busy: bool = False
    generation: int = 0  # probes finished
    result: str | None = None  # the last probe's outcome
    sent: int = 0  # probe packets / connection attempts put on the wire


_MISS = object()


class ServiceProbe:
    """Probes the lab services on ``lab_ip`` on the wire; thread-safe, shared by lanes.

    ``ports`` overrides the port of a protocol (tests; a lab on other ports). Timing, in
    seconds: ``floor_s`` the shortest deadline of an attempt, ``k`` its multiple of the
    smoothed round-trip time, ``attempts`` and ``budget_s`` how often and how long in all a
    silent service is asked before it is a fault, ``fresh_s`` how long a liveness (or a
    fault) found stands without a new probe.
    """

    def __init__(self, lab_ip: str, *, ports: Mapping[str, int] | None = None,
                 floor_s: float = 1.0, k: float = 3.0, attempts: int = 3,
                 budget_s: float = 8.0, fresh_s: float = 2.0) -> None:
        unknown = sorted(set(ports or {}) - set(PORTS))
        if unknown:
            raise ValueError(f"ServiceProbe: unknown protocol(s) {unknown}; known: "
                             f"{sorted(PORTS)}")
        if not (0 < floor_s <= budget_s and k > 0 and attempts >= 1 and fresh_s >= 0):
            raise ValueError(f"ServiceProbe: need 0 < floor_s <= budget_s, k > 0, "
                             f"attempts >= 1, fresh_s >= 0 (got floor_s={floor_s}, "
                             f"budget_s={budget_s}, k={k}, attempts={attempts}, "
                             f"fresh_s={fresh_s})")
        self.lab_ip = lab_ip
        self.floor_s, self.k, self.attempts = floor_s, k, attempts
        self.budget_s, self.fresh_s = budget_s, fresh_s
        self._lock = threading.Lock()
        self._services = {name: _Service(name, (ports or {}).get(name, port),
                                         threading.Condition(self._lock))
                          for name, port in PORTS.items()}

    # --- what the runner calls ---------------------------------------------------------

    def fault(self, needed: Iterable[str] | None = None,
              alive: Iterable[str] = frozenset(), since: float | None = None) -> str | None:
        """A one-line fault of the first ``needed`` service (default: all) that does not
        answer, else None. Protocols in ``alive`` are not probed: a service that answered
        a phone within the case is alive. ``since`` (wall clock): a liveness older than
        this (the case's start) does not count, so a service that died during the case
        is found."""
        wanted = set(needed) if needed is not None else set(PORTS)
        wanted -= set(alive)
        for name in ORDER:
            if name in wanted:
                fault = self._check(self._services[name], since)
                if fault is not None:
                    return fault
        return None

    def observed(self, protocol: str, at: float | None = None) -> None:
        """``protocol``'s server was seen working (it served a phone) at wall-clock time
        ``at`` (default now): a liveness that answers probes for ``fresh_s`` after it.
        Unknown protocols (e.g. DHCP) are ignored."""
        svc = self._services.get(protocol)
        if svc is None:
            return
        now = time.time()
        at = now if at is None else min(float(at), now)
        with self._lock:
            if svc.alive_at is None or at > svc.alive_at:
                svc.alive_at = at

    def follow(self, log: Any) -> Callable[[], None]:
        """Every record appended to ``log`` (a ``RequestLog``) from now on is a liveness of
        its protocol's server (the server just handled a request), except those that
        ended in an error (a transfer the stopping server cut, a timeout). Returns the
        function that stops following."""
        def seen(record: Any) -> None:
            if record.outcome != "error":
                self.observed(record.protocol)

        unsubscribe: Callable[[], None] = log.subscribe(seen)
        return unsubscribe

    # --- figures -----------------------------------------------------------------------

    def estimate(self, protocol: str) -> float | None:
        """The smoothed round-trip time of ``protocol``'s successful probes (None before
        the first)."""
        with self._lock:
            return self._services[protocol].srtt

    def deadlines(self, protocol: str) -> list[float]:
        """The per-attempt deadlines the next probe of ``protocol`` would use."""
        with self._lock:
            return self._deadlines(self._services[protocol])

    def sent(self) -> dict[str, int]:
        """Probe packets (UDP) / connection attempts (TCP) sent so far, per protocol."""
        with self._lock:
            return {name: svc.sent for name, svc in self._services.items()}

    # --- one service -------------------------------------------------------------------

    def _cached(self, svc: _Service, since: float | None = None) -> object:
        """The fresh answer (None alive, a fault string) or _MISS; holds the lock."""
        now = time.time()
        alive = svc.alive_at is not None and now - svc.alive_at <= self.fresh_s \
            and (since is None or svc.alive_at >= since)
        dead = svc.fault_at is not None and now - svc.fault_at <= self.fresh_s
        if alive and not (dead and (svc.fault_at or 0.0) > (svc.alive_at or 0.0)):
            return None
        if dead:
            return svc.fault
        return _MISS

    def _check(self, svc: _Service, since: float | None = None) -> str | None:
        with svc.cond:
            cached = self._cached(svc, since)
            if cached is not _MISS:
                return cached  # type: ignore[return-value]
            if svc.busy:  # one probe in flight: its result is ours
                generation = svc.generation
                wait_s = 2 * self.budget_s + 1.0
                if svc.cond.wait_for(lambda: svc.generation != generation, timeout=wait_s):
                    return svc.result
                return (f"lab {svc.name.upper()} on {self.lab_ip}:{svc.port}: its health "
                        f"probe did not finish within {wait_s:g} s")
            svc.busy = True
            deadlines = self._deadlines(svc)
        fault: str | None = f"lab {svc.name.upper()} health probe failed"
        rtt: float | None = None
        try:
            fault, rtt = self._probe(svc, deadlines)
        finally:
            with svc.cond:
                now = time.time()
                if fault is None:
                    svc.alive_at = max(svc.alive_at or now, now)
                    if rtt is not None:
                        self._learn(svc, rtt)
                else:
                    svc.fault, svc.fault_at = fault, now
                svc.result = fault
                svc.busy = False
                svc.generation += 1
                svc.cond.notify_all()
        return fault

    def _deadlines(self, svc: _Service) -> list[float]:
        base = self.floor_s
        if svc.srtt is not None:
            base = max(base, self.k * svc.srtt, svc.srtt + 4 * svc.rttvar)
        out: list[float] = []
        left, deadline = self.budget_s, base
        for _ in range(self.attempts):
            deadline = min(deadline, left)
            if deadline < 0.01:
                break
            out.append(deadline)
            left -= deadline
            deadline *= 2
        return out

    @staticmethod
    def _learn(svc: _Service, rtt: float) -> None:
        """RFC 6298's smoothing of round-trip samples (alpha 1/8, beta 1/4)."""
        if svc.srtt is None:
            svc.srtt, svc.rttvar = rtt, rtt / 2
        else:
            svc.rttvar = 0.75 * svc.rttvar + 0.25 * abs(svc.srtt - rtt)
            svc.srtt = 0.875 * svc.srtt + 0.125 * rtt

    def _count(self, svc: _Service) -> None:
        with self._lock:
            svc.sent += 1

    # --- the probes (no lock held) -----------------------------------------------------

    def _probe(self, svc: _Service, deadlines: list[float]) -> tuple[str | None, float | None]:
        if svc.name == "dns":
            return self._dns(svc, deadlines)
        if svc.name == "tftp":
            return self._tftp(svc, deadlines)
        return self._tcp(svc, deadlines)

    def _tcp(self, svc: _Service, deadlines: list[float]) -> tuple[str | None, float | None]:
        where = f"lab {svc.name.upper()} on {self.lab_ip}:{svc.port}"
        for deadline in deadlines:
            self._count(svc)
            t0 = time.monotonic()
            try:
                socket.create_connection((self.lab_ip, svc.port), timeout=deadline).close()
            except TimeoutError:
                continue  # a full backlog drops SYNs: ask again, longer
            except OSError as exc:  # refused (nobody listens), unreachable: definitive
                return f"{where} refuses connections ({exc.strerror or exc})", None
            return None, time.monotonic() - t0
        return f"{where} refuses connections (timed out)", None

    def _udp(self, svc: _Service, sock: socket.socket, payload: bytes,
             deadlines: list[float], accept: Callable[[bytes, Any], bool]
             ) -> tuple[bytes, float]:
        """Send ``payload`` once per deadline and wait that long for a datagram ``accept``
        takes (an answer to any attempt counts); TimeoutError when none came,
        ConnectionRefusedError when nobody listens."""
        t0 = time.monotonic()
        for deadline in deadlines:
            self._count(svc)
            sock.sendto(payload, (self.lab_ip, svc.port))
            end = time.monotonic() + deadline
            while (left := end - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    data, peer = sock.recvfrom(4096)
                except TimeoutError:
                    break
                if accept(data, peer):
                    return data, time.monotonic() - t0
        raise TimeoutError(f"no answer within {sum(deadlines):g} s")

    def _dns(self, svc: _Service, deadlines: list[float]) -> tuple[str | None, float | None]:
        from dnslib import DNSRecord

        query = DNSRecord.question(LAB_DNS_NAME)

        def ours(data: bytes, peer: Any) -> bool:
            try:
                return bool(DNSRecord.parse(data).header.id == query.header.id)
            except Exception:  # dnslib raises plain exceptions on garbage: not an answer
                return False

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:
                udp.connect((self.lab_ip, svc.port))  # refusals reported, others' dropped
                data, rtt = self._udp(svc, udp, query.pack(), deadlines, ours)
            except OSError as exc:
                return (f"lab DNS on {self.lab_ip}:{svc.port} does not answer "
                        f"({exc.__class__.__name__})"), None
        if not DNSRecord.parse(data).rr:
            return f"lab DNS on {self.lab_ip} does not resolve {LAB_DNS_NAME}", None
        return None, rtt

    def _tftp(self, svc: _Service, deadlines: list[float]) -> tuple[str | None, float | None]:
        where = f"lab TFTP on {self.lab_ip}:{svc.port}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            # Unconnected (the answer comes from the transfer's own port), so an ICMP port
            # unreachable is only reported with IP_RECVERR.
            udp.setsockopt(socket.IPPROTO_IP, _IP_RECVERR, 1)
            try:
                data, rtt = self._udp(svc, udp, TFTP_PROBE, deadlines,
                                      lambda data, peer: bool(peer[0] == self.lab_ip))
            except OSError:
                return f"{where} does not answer", None
        if data[:2] not in (b"\x00\x05", b"\x00\x03", b"\x00\x06"):
            return f"{where} answers garbage", None
        return None, rtt
