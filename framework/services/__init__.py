"""Recording provisioning services: DNS, TFTP, HTTP, HTTPS and FTP on one lab address.

The phone under test fetches its firmware and configuration from these servers; every
request lands in one ``RequestLog`` that the verdict compares with the resolution core's
expected URLs. ``ProvisioningServices`` starts all five on one address (in the lab
namespace on the simulated rig, on the lab NIC's address on a real bench).

Usage::

    log, content = RequestLog(jsonl=run_dir / "requests.jsonl"), ContentStore()
    zone = Zone({"Audiocodes.com": "192.0.2.1"})
    content.serve("/440HD.img", image)
    with ProvisioningServices("192.0.2.1", netns="hil-lab", state_dir=state, log=log,
                              content=content, zone=zone) as services:
        ... phone boots ...
        log.wait_for(lambda r: r.url == "tftp://Audiocodes.com/440HD.img",
                     timeout=30, what="ph1's firmware request")

Imports (layer 10 of pyproject.toml's contracts): framework.rig, framework.resolution
and the bottom modules (records, errors, netns); never framework.dhcp, its independent
sibling, nor anything above (console, power, phone, runner...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from framework.services.capture import CaptureError, PacketCapture, PcapTail
from framework.services.content import ContentStore, Cut, NotFound, Resolved, Serve, Silent
from framework.services.dns import DnsServer, Zone
from framework.services.ftp import FtpServer
from framework.services.http import HttpServer, HttpsServer
from framework.services.log import (
    DEFAULT_PORTS,
    PROTOCOLS,
    Outcome,
    RequestLog,
    RequestRecord,
    RequestWaitTimeout,
    build_url,
    normalize_mac,
)
from framework.services.namespace import ServiceStartError, check_endpoint
from framework.services.tftp import TftpServer
from framework.services.tls import LabCA, ServerCertificate

Service = DnsServer | TftpServer | HttpServer | FtpServer


@dataclass(frozen=True)
class ServicePorts:
    """Port per service; ``None`` leaves that service off, 0 picks a free port."""

    dns: int | None = DEFAULT_PORTS["dns"]
    tftp: int | None = DEFAULT_PORTS["tftp"]
    http: int | None = DEFAULT_PORTS["http"]
    https: int | None = DEFAULT_PORTS["https"]
    ftp: int | None = DEFAULT_PORTS["ftp"]

    @classmethod
    def ephemeral(cls) -> ServicePorts:
        """Every service on a kernel-chosen free port (tests sharing one namespace)."""
        return cls(dns=0, tftp=0, http=0, https=0, ftp=0)


class ProvisioningServices:
    """The five recording servers on one address, sharing one log, content and zone.

    ``state_dir`` holds the lab CA (``state_dir/lab-ca/ca.pem``, generated on first use).
    The HTTPS certificate covers ``tls_names`` (default: the zone's names when started)
    and ``address``; other SNI names get a certificate minted by the same CA unless
    ``mint_for_sni`` is False. ``ftp_users`` maps user -> password (never logged).
    """

    def __init__(self, address: str, *, netns: str | None = None, state_dir: str | Path,
                 log: RequestLog, content: ContentStore, zone: Zone,
                 ports: ServicePorts = ServicePorts(),
                 ftp_users: Mapping[str, str] | None = None, ftp_anonymous: bool = True,
                 tls_names: Sequence[str] | None = None, mint_for_sni: bool = True) -> None:
        check_endpoint("provisioning services", address, 0)
        for name in PROTOCOLS:
            port = getattr(ports, name)
            if port is not None:
                check_endpoint(name.upper(), address, port)
        self.address = address
        self.netns = netns
        self.state_dir = Path(state_dir)
        self.log = log
        self.content = content
        self.zone = zone
        self.ports = ports
        self.ca = LabCA(self.state_dir)
        self._tls_names = tls_names
        self.dns: DnsServer | None = None
        self.tftp: TftpServer | None = None
        self.http: HttpServer | None = None
        self.https: HttpsServer | None = None
        self.ftp: FtpServer | None = None
        if ports.dns is not None:
            self.dns = DnsServer(address, ports.dns, log=log, zone=zone, netns=netns)
        if ports.tftp is not None:
            self.tftp = TftpServer(address, ports.tftp, log=log, content=content, netns=netns)
        if ports.http is not None:
            self.http = HttpServer(address, ports.http, log=log, content=content, netns=netns)
        if ports.https is not None:
            self.https = HttpsServer(address, ports.https, log=log, content=content, ca=self.ca,
                                     names=(), netns=netns, mint_for_sni=mint_for_sni)
        if ports.ftp is not None:
            self.ftp = FtpServer(address, ports.ftp, log=log, content=content, netns=netns,
                                 users=ftp_users, anonymous=ftp_anonymous)
        self._started: list[Service] = []

    @property
    def ca_pem_path(self) -> Path:
        """The lab CA certificate clients must trust for HTTPS."""
        return self.ca.ca_pem_path

    def services(self) -> list[Service]:
        """The configured servers (DNS, TFTP, HTTP, HTTPS, FTP order; off ones left out)."""
        return [s for s in (self.dns, self.tftp, self.http, self.https, self.ftp)
                if s is not None]

    @property
    def endpoints(self) -> dict[str, tuple[str, int]]:
        """protocol -> (address, port) actually bound (after ``start``)."""
        return {s.protocol: (self.address, s.port) for s in self.services()}

    def url(self, protocol: str, path: str, *, host: str | None = None) -> str:
        """The URL a client uses to fetch ``path`` from this service (host default: our IP)."""
        server = {s.protocol: s for s in self.services()}.get(protocol)
        if server is None or protocol == "dns":
            raise ValueError(f"no {protocol!r} file service here; running: "
                             f"{[s.protocol for s in self.services() if s.protocol != 'dns']}")
        if protocol == "tftp":
            path = path.lstrip("/")
        return build_url(protocol, host or self.address, server.port, path)

    def start(self) -> ProvisioningServices:
        """Start every configured server; on any failure stop the ones started and raise."""
        if self.https is not None:
            names = self._tls_names if self._tls_names is not None else self.zone.names()
            self.https.names = tuple(dict.fromkeys((*names, self.address)))
        try:
            for service in self.services():
                service.start()
                self._started.append(service)
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every started server (all are attempted; the first error is raised)."""
        first: Exception | None = None
        while self._started:
            service = self._started.pop()
            try:
                service.stop()
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first

    def __enter__(self) -> ProvisioningServices:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


__all__ = [
    "DEFAULT_PORTS", "PROTOCOLS", "CaptureError", "ContentStore", "Cut", "DnsServer",
    "FtpServer", "HttpServer", "HttpsServer", "LabCA", "NotFound", "Outcome",
    "PacketCapture", "PcapTail", "ProvisioningServices", "RequestLog", "RequestRecord",
    "RequestWaitTimeout", "Resolved", "Serve", "ServerCertificate", "ServicePorts",
    "ServiceStartError", "Silent", "TftpServer", "Zone", "build_url", "normalize_mac",
]
