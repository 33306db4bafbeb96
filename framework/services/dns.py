"""Recording DNS server (dnslib) answering the lab zone.

The manual's examples name the server ``Audiocodes.com`` (Admin Manual 2.2.8, 10.2.2,
Table 10-2), so the phone resolves it first; the record keeps the spelling it used.

Phones resolve the provisioning host (``Audiocodes.com`` in Option 66, the host in an
Option 160 URL) before TFTP/HTTP/FTP. Each query becomes one ``RequestRecord`` with the
name exactly as sent (case kept: dnslib keeps the labels' bytes), the type and the
answer; the TFTP and FTP servers use those answers to name the host a phone asked for.
Names are matched case-insensitively (RFC 4343); unknown names get NXDOMAIN, known names
asked for another type get an empty NOERROR answer. UDP and TCP.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Self

from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import DNSHandler, DNSServer

from framework.services.log import Outcome, RequestLog, RequestRecord
from framework.services.namespace import RecordingServer, ServiceStartError, in_namespace

logger = logging.getLogger(__name__)


def _zone_key(name: str) -> str:
    key = name.strip().rstrip(".").lower()
    if not key:
        raise ValueError("a zone name cannot be empty")
    return key


class Zone:
    """Lab host names -> IPv4 address; case-insensitive, thread-safe, changeable live."""

    def __init__(self, names: Mapping[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, tuple[str, str]] = {}  # key -> (name as given, address)
        for name, address in (names or {}).items():
            self.set(name, address)

    def set(self, name: str, address: str) -> None:
        """Answer ``name`` (any case) with ``address``."""
        try:
            ip = ipaddress.IPv4Address(address)
        except ValueError:
            raise ValueError(f"zone entry {name!r}: {address!r} is not an IPv4 address") from None
        with self._lock:
            self._names[_zone_key(name)] = (name.rstrip("."), str(ip))

    def remove(self, name: str) -> None:
        """Forget ``name``: it gets NXDOMAIN from now on."""
        with self._lock:
            self._names.pop(_zone_key(name), None)

    def resolve(self, name: str) -> str | None:
        """The address for ``name`` (case-insensitive), or None."""
        with self._lock:
            entry = self._names.get(_zone_key(name))
        return entry[1] if entry else None

    def names(self) -> list[str]:
        """The names as they were added."""
        with self._lock:
            return [given for given, _ in self._names.values()]

    def items(self) -> Iterator[tuple[str, str]]:
        with self._lock:
            return iter(list(self._names.values()))


def _name_as_sent(label: Any) -> str:
    """The query name's labels exactly as they came off the wire (no trailing dot)."""
    return ".".join(part.decode("ascii", "backslashreplace") for part in label.label)


class _ZoneResolver:
    """dnslib resolver: answers from the Zone and records every query."""

    def __init__(self, owner: DnsServer) -> None:
        self.owner = owner

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        owner = self.owner
        reply = request.reply()  # copies id, question, RD; sets QR, AA, RA
        question = request.q
        name = _name_as_sent(question.qname)
        qtype = QTYPE.get(question.qtype, str(question.qtype))
        answer: list[str] = []
        problem = ""
        if request.header.opcode != 0:
            reply.header.rcode = RCODE.NOTIMP
            problem = f"opcode {request.header.opcode} not implemented (only QUERY)"
        elif not request.questions:
            reply.header.rcode = RCODE.FORMERR
            problem = "query without a question"
        else:
            address = owner.zone.resolve(name) if name else None
            if address is None:
                reply.header.rcode = RCODE.NXDOMAIN
            elif question.qtype in (QTYPE.A, QTYPE.ANY):
                reply.add_answer(RR(question.qname, QTYPE.A, rdata=A(address), ttl=owner.ttl))
                answer.append(address)
        rcode = reply.header.rcode
        if rcode == RCODE.NOERROR:
            outcome = Outcome.SERVED
        elif rcode == RCODE.NXDOMAIN:
            outcome = Outcome.NOT_FOUND
        else:
            outcome = Outcome.ERROR
        details: dict[str, Any] = {"qtype": qtype, "qname": name + ".", "answer": answer,
                                   "ttl": owner.ttl,
                                   "rcode": RCODE.get(rcode, str(rcode)),
                                   "transport": handler.protocol, "id": request.header.id}
        if problem:
            details["error"] = problem
        if len(request.questions) > 1:
            details["extra_questions"] = [_name_as_sent(q.qname) for q in request.questions[1:]]
        handler.lab_record = RequestRecord(
            time=getattr(handler, "lab_received", time.time()), protocol="dns",
            client_ip=handler.client_address[0], client_port=handler.client_address[1],
            server_ip=owner.address, server_port=owner.port, host=name, path="", url=None,
            method=qtype if not problem else "?", outcome=outcome, status=rcode,
            details=details)
        return reply


class _RecordingLogger:
    """dnslib's logger hooks: keep the raw datagram and record decoding errors."""

    def log_recv(self, handler: Any, data: bytes) -> None:
        handler.lab_received = time.time()
        handler.lab_raw = data

    def log_send(self, handler: Any, data: bytes) -> None:
        record = getattr(handler, "lab_record", None)
        if record is not None:
            handler.lab_record = None
            record.details["response_length"] = len(data)
            handler.server.lab_owner.log.append(dataclasses.replace(record, bytes_sent=len(data)))

    def log_error(self, handler: Any, error: object) -> None:
        handler.server.lab_owner.record_malformed(handler, f"malformed DNS message: {error}")

    def log_request(self, handler: Any, request: Any) -> None: ...
    def log_reply(self, handler: Any, reply: Any) -> None: ...
    def log_truncated(self, handler: Any, reply: Any) -> None: ...
    def log_data(self, dnsobj: Any) -> None: ...


class _RecordingHandler(DNSHandler):
    """dnslib's handler; anything dnslib does not catch is recorded, not printed."""

    def handle(self) -> None:
        try:
            super().handle()
        except Exception as exc:
            self.server.lab_owner.record_malformed(
                self, f"DNS message could not be handled: {type(exc).__name__}: {exc}")


class DnsServer(RecordingServer):
    """A recording DNS server on one address (UDP, and TCP unless ``tcp=False``).

    Runs in network namespace ``netns`` (or the caller's); port 0 picks a free port
    (the same number for UDP and TCP).
    """

    protocol = "dns"

    def __init__(self, address: str, port: int = 53, *, log: RequestLog, zone: Zone,
                 netns: str | None = None, tcp: bool = True, ttl: int = 60) -> None:
        super().__init__(address, port, log=log, netns=netns)
        self.zone = zone
        self.tcp = tcp
        self.ttl = ttl
        self._servers: list[DNSServer] = []
        self._threads: list[threading.Thread] = []
        self._port = port

    @property
    def port(self) -> int:
        return self._port

    def record_malformed(self, handler: Any, problem: str) -> None:
        raw: bytes = getattr(handler, "lab_raw", b"") or b""
        details: dict[str, Any] = {"error": problem, "transport": getattr(handler, "protocol", "?"),
                                   "datagram_length": len(raw), "datagram_head": raw[:48].hex()}
        if len(raw) >= 2:
            details["id"] = struct.unpack("!H", raw[:2])[0]
        self.log.append(RequestRecord(
            time=getattr(handler, "lab_received", time.time()), protocol="dns",
            client_ip=handler.client_address[0], client_port=handler.client_address[1],
            server_ip=self.address, server_port=self._port, host="", path="", url=None,
            method="?", outcome=Outcome.ERROR, details=details))

    def start(self) -> Self:
        if self._servers:
            return self
        resolver = _ZoneResolver(self)
        recorder = _RecordingLogger()
        with in_namespace(self.netns):
            try:
                udp = DNSServer(resolver, address=self.address, port=self.requested_port,
                                logger=recorder, handler=_RecordingHandler)
                self._port = int(udp.server.server_address[1])
                udp.server.lab_owner = self
                self._servers.append(udp)
                if self.tcp:
                    tcp = DNSServer(resolver, address=self.address, port=self._port,
                                    logger=recorder, handler=_RecordingHandler, tcp=True)
                    tcp.server.lab_owner = self
                    self._servers.append(tcp)
            except OSError as exc:
                self.stop()
                raise ServiceStartError(f"DNS cannot listen on {self.address}:"
                                        f"{self.requested_port}: {exc.strerror}") from exc
            for server in self._servers:
                transport = "tcp" if server.server.socket_type == socket.SOCK_STREAM else "udp"
                thread = threading.Thread(target=server.server.serve_forever,
                                          kwargs={"poll_interval": 0.1}, daemon=True,
                                          name=f"dns-{transport}-{self.address}:{self._port}")
                thread.start()
                self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop both transports and release the port."""
        for server, thread in zip(self._servers, self._threads, strict=False):
            server.server.shutdown()
            thread.join()
        for server in self._servers:
            server.server.server_close()
        self._servers.clear()
        self._threads.clear()


__all__ = ["DnsServer", "Zone"]
