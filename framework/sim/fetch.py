"""The virtual phone's provisioning clients: DNS, TFTP, HTTP, HTTPS and FTP on the wire.

Each fetch resolves the URL's host through the DNS server of the phone's lease (never the
host's resolver), then downloads with the protocol of the URL: TFTP is a small RFC 1350
client (RRQ, octet mode; no well-kept client library fits), HTTP(S) uses ``http.client``
with ``ssl`` trusting the lab CA, FTP uses ``ftplib`` (anonymous unless the URL has user
info). Every HTTP request carries the 400HD User-Agent
``AUDC-IPPhone/<version> (<model>G-Rev0; <MAC>)`` (PROVISIONING.md, field captures).

A firmware fetch reads the image header first and continues only if the caller's check
accepts it (Admin Manual 10.2: the phone checks the header and downloads the whole image
only when it will install it); otherwise the transfer is abandoned mid-way (TFTP ERROR,
HTTP/FTP connection closed), as a phone that stops reading would.
"""

from __future__ import annotations

import ftplib
import http.client
import ipaddress
import select
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from urllib.parse import quote, unquote

from dnslib import QTYPE, RCODE, DNSRecord

from framework.errors import HilError
from framework.sim.dhcp import Cancelled
from framework.sim.firmware import PlannedRequest

TIMEOUT_S = 3.0
TFTP_BLOCK = 512
HeadCheck = Callable[[bytes], bool]


class FetchError(HilError):
    """A provisioning request failed; the message says how (not found, timeout, TLS, ...)."""


@dataclass(frozen=True)
class PhoneIdentity:
    """What the phone says about itself in HTTP requests."""

    model: str
    mac: str
    version: str

    @property
    def user_agent(self) -> str:
        return f"AUDC-IPPhone/{self.version} ({self.model}G-Rev0; {self.mac.upper()})"


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


class ProvisioningClient:
    """Fetches planned requests for one phone; use it in the phone's namespace thread."""

    def __init__(self, identity: PhoneIdentity, dns_servers: Sequence[IPv4Address],
                 ca_file: Path | None, cancelled: threading.Event, *,
                 verify: bool = True) -> None:
        self.identity = identity
        self.dns_servers = list(dns_servers)
        self.ca_file = ca_file
        #: verify the server certificate (chain to ca_file, name, validity), as a TLS
        #: client should (RFC 2818 3.1, RFC 6125 6); False: deviation trusts-any-certificate
        self.verify = verify
        self.cancelled = cancelled

    def _check(self) -> None:
        if self.cancelled.is_set():
            raise Cancelled()

    # -- DNS --------------------------------------------------------------------------

    def resolve(self, host: str) -> str:
        """The IPv4 address of ``host``: an A query, name as in the URL, to the lease's DNS."""
        if is_ip_literal(host):
            return host
        if not self.dns_servers:
            raise FetchError(f"cannot resolve {host}: the lease named no DNS server")
        query = DNSRecord.question(host, "A")
        for server in self.dns_servers:
            for _ in range(2):
                self._check()
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.settimeout(1.5)
                    sock.connect((str(server), 53))  # ICMP unreachable -> refused at once
                    try:
                        sock.send(query.pack())
                        data = sock.recv(4096)
                    except TimeoutError:
                        continue
                    except ConnectionRefusedError:
                        break
                answer = DNSRecord.parse(data)
                if answer.header.id != query.header.id:
                    continue
                if answer.header.rcode != RCODE.NOERROR:
                    raise FetchError(f"DNS {RCODE.get(answer.header.rcode)} for {host}")
                for rr in answer.rr:
                    if rr.rtype == QTYPE.A:
                        return str(rr.rdata)
                raise FetchError(f"DNS answer for {host} has no A record")
        raise FetchError(f"no answer from DNS {', '.join(map(str, self.dns_servers))} "
                         f"for {host}")

    # -- dispatch ---------------------------------------------------------------------

    def fetch(self, request: PlannedRequest, head_size: int = 0,
              head_check: HeadCheck | None = None) -> bytes | None:
        """The body at ``request``; None when ``head_check`` rejected the first bytes."""
        address = self.resolve(request.host)
        handler = {"tftp": self._tftp, "http": self._http, "https": self._http,
                   "ftp": self._ftp}.get(request.scheme)
        if handler is None:
            raise FetchError(f"unsupported protocol {request.scheme}")
        try:
            return handler(request, address, head_size, head_check)
        except TimeoutError as exc:
            raise FetchError(f"timed out ({exc or 'no answer'})") from None
        except ssl.SSLError as exc:
            raise FetchError(f"TLS: {exc.reason or exc}") from None
        except http.client.HTTPException as exc:  # e.g. the server closed mid-body
            raise FetchError(f"HTTP: {type(exc).__name__}") from None
        except OSError as exc:
            raise FetchError(exc.strerror or str(exc)) from None

    # -- TFTP (RFC 1350) --------------------------------------------------------------

    def _tftp(self, request: PlannedRequest, address: str, head_size: int,
              head_check: HeadCheck | None) -> bytes | None:
        filename = request.path[1:] if request.path.startswith("/") else request.path
        rrq = b"\x00\x01" + filename.encode("latin-1") + b"\x00octet\x00"
        body = bytearray()
        checked = head_check is None
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            server: tuple[str, int] = (address, request.effective_port)
            peer: tuple[str, int] | None = None
            last: bytes = rrq
            expected = 1
            retries = 0
            sock.sendto(rrq, server)
            while True:
                self._check()
                ready, _, _ = select.select([sock], [], [], 1.0)
                if not ready:
                    retries += 1
                    if retries > 3:
                        raise FetchError("TFTP: no answer")
                    sock.sendto(last, peer or server)
                    continue
                data, source = sock.recvfrom(4 + TFTP_BLOCK)
                if source[0] != address or (peer is not None and source != peer):
                    continue
                opcode = struct.unpack_from("!H", data)[0] if len(data) >= 2 else 0
                if opcode == 5:
                    code = struct.unpack_from("!H", data, 2)[0] if len(data) >= 4 else 0
                    message = data[4:].split(b"\x00", 1)[0].decode("latin-1")
                    raise FetchError(f"TFTP error {code}: {message}")
                if opcode != 3 or len(data) < 4:
                    continue
                peer = source
                block = struct.unpack_from("!H", data, 2)[0]
                last = b"\x00\x04" + struct.pack("!H", block)
                if block == expected:
                    body += data[4:]
                    expected = (expected + 1) & 0xFFFF
                    retries = 0
                    if not checked and (len(body) >= head_size or len(data) < 4 + TFTP_BLOCK):
                        checked = True
                        if head_check is not None and not head_check(bytes(body[:head_size])):
                            sock.sendto(b"\x00\x05\x00\x00header read, not needed\x00", peer)
                            return None
                sock.sendto(last, peer)
                if block == (expected - 1) & 0xFFFF and len(data) < 4 + TFTP_BLOCK:
                    return bytes(body)

    # -- HTTP / HTTPS -----------------------------------------------------------------

    def _http(self, request: PlannedRequest, address: str, head_size: int,
              head_check: HeadCheck | None) -> bytes | None:
        port = request.effective_port
        connection: http.client.HTTPConnection
        if request.scheme == "https":
            connection = _PinnedHTTPSConnection(address, port, self._tls_context(),
                                                server_name=request.host)
        else:
            connection = http.client.HTTPConnection(address, port, timeout=TIMEOUT_S)
        host_header = request.host if request.port is None else f"{request.host}:{request.port}"
        try:
            connection.putrequest("GET", quote(request.path, safe="/;:@&=+$,~!*'()%"),
                                  skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", host_header)
            connection.putheader("User-Agent", self.identity.user_agent)
            connection.putheader("Accept", "*/*")
            connection.putheader("Connection", "close")
            connection.endheaders()
            response = connection.getresponse()
            if response.status != 200:
                raise FetchError(f"HTTP {response.status} {response.reason}")
            if head_check is not None:
                head = response.read(head_size)
                if not head_check(head):
                    return None
                return head + response.read()
            return response.read()
        finally:
            connection.close()

    def _tls_context(self) -> ssl.SSLContext:
        if self.ca_file is None or not self.ca_file.is_file():
            raise FetchError(f"HTTPS: no lab CA to trust (sim.ca_file {self.ca_file} is "
                             "missing)")
        context = ssl.create_default_context(cafile=str(self.ca_file))
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    # -- FTP --------------------------------------------------------------------------

    def _ftp(self, request: PlannedRequest, address: str, head_size: int,
             head_check: HeadCheck | None) -> bytes | None:
        user, _, password = request.userinfo.partition(":")
        ftp = ftplib.FTP(timeout=TIMEOUT_S)
        try:
            ftp.connect(address, request.effective_port)
            if user:
                ftp.login(unquote(user), unquote(password))
            else:
                ftp.login("anonymous", "anonymous@")
            ftp.voidcmd("TYPE I")
            path = request.path[1:] if request.path.startswith("/") else request.path
            with ftp.transfercmd(f"RETR {path}") as data:
                body = bytearray()
                checked = head_check is None
                while chunk := data.recv(65536):
                    self._check()
                    body += chunk
                    if not checked and len(body) >= head_size:
                        checked = True
                        if head_check is not None and not head_check(bytes(body[:head_size])):
                            return None
            if not checked and head_check is not None and not head_check(bytes(body)):
                return None
            ftp.voidresp()
            return bytes(body)
        except ftplib.Error as exc:
            raise FetchError(f"FTP {str(exc).strip()}") from None
        finally:
            ftp.close()


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address resolved by the phone, with SNI and certificate check for the name."""

    def __init__(self, address: str, port: int, context: ssl.SSLContext, server_name: str):
        super().__init__(address, port, timeout=TIMEOUT_S, context=context)
        self._context = context
        self.server_name = server_name

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        # ssl sends no SNI for an IP literal (RFC 6066) and then checks the IP SAN.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.server_name)
