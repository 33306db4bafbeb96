"""The lab certificate authority for the HTTPS provisioning server (made with trustme).

Generated on first use and cached under a state directory, so every run (and every
client that must trust it: curl ``--cacert``, the simulated phones, a real phone's
trusted-CA slot) sees the same CA. Server certificates are issued for the lab names the
phones use plus the server IP.

Usage::

    ca = LabCA(Path("/var/lib/hil"))            # creates or loads state_dir/lab-ca/
    curl --cacert {ca.ca_pem_path} https://Audiocodes.com/440HD.img
    ctx = ca.server_context(["Audiocodes.com", "192.0.2.1"])
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import os
import ssl
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme

CA_DIRNAME = "lab-ca"


@dataclass(frozen=True)
class ServerCertificate:
    """A server certificate issued by the lab CA, as PEM files on disk."""

    names: tuple[str, ...]
    cert_path: Path  # leaf certificate (the chain is just the lab CA)
    key_path: Path  # its private key, mode 0600


def _identity(name: str) -> str:
    name = name.strip().rstrip(".")
    if not name:
        raise ValueError("an empty name cannot go into a certificate")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name.lower()


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class LabCA:
    """A test CA kept in ``state_dir/lab-ca/`` (``ca.pem`` public, ``ca.key`` mode 0600).

    Safe to construct from several processes at once (a file lock guards generation).
    """

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)
        self.directory = self.state_dir / CA_DIRNAME
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"cannot create the lab CA directory {str(self.directory)!r}: "
                             f"{exc.strerror}") from exc
        self.ca_pem_path = self.directory / "ca.pem"
        self._key_path = self.directory / "ca.key"
        self._lock = threading.Lock()
        with self._file_lock():
            if self.ca_pem_path.is_file() and self._key_path.is_file():
                try:
                    self._ca = trustme.CA.from_pem(self.ca_pem_path.read_bytes(),
                                                   self._key_path.read_bytes())
                except ValueError as exc:
                    raise ValueError(f"the cached lab CA in {str(self.directory)!r} is "
                                     f"unreadable ({exc}); delete that directory to "
                                     "generate a new one") from exc
            else:
                self._ca = trustme.CA(organization_name="hil400hd lab",
                                      organization_unit_name="hil400hd provisioning lab CA")
                _write_atomic(self._key_path, self._ca.private_key_pem.bytes(), 0o600)
                _write_atomic(self.ca_pem_path, self._ca.cert_pem.bytes())

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate (PEM) that clients must trust."""
        return self.ca_pem_path.read_bytes()

    def issue(self, names: Sequence[str]) -> ServerCertificate:
        """Issue (or reuse) a server certificate for these host names and IP addresses."""
        identities = tuple(sorted({_identity(n) for n in names}))
        if not identities:
            raise ValueError("a server certificate needs at least one host name or IP")
        digest = hashlib.sha256("\n".join(identities).encode()).hexdigest()[:16]
        certs = self.directory / "certs"
        cert_path, key_path = certs / f"{digest}.pem", certs / f"{digest}.key"
        with self._lock, self._file_lock():  # key and cert must come from one issue
            if not (cert_path.is_file() and key_path.is_file()):
                certs.mkdir(exist_ok=True)
                leaf = self._ca.issue_cert(*identities, organization_name="hil400hd lab")
                _write_atomic(key_path, leaf.private_key_pem.bytes(), 0o600)
                _write_atomic(cert_path, b"".join(b.bytes() for b in leaf.cert_chain_pems))
        return ServerCertificate(names=identities, cert_path=cert_path, key_path=key_path)

    def server_context(self, names: Sequence[str]) -> ssl.SSLContext:
        """A TLS server context presenting a certificate for ``names``."""
        cert = self.issue(names)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert.cert_path, cert.key_path)
        return context

    def signer(self) -> tuple[bytes, bytes]:
        """(CA certificate PEM, CA private key PEM): for issuing certificates trustme
        cannot make (framework.services.badcerts: an expired one)."""
        return self._ca.cert_pem.bytes(), self._ca.private_key_pem.bytes()

    def client_context(self) -> ssl.SSLContext:
        """A TLS client context trusting only the lab CA (for in-process clients)."""
        context = ssl.create_default_context(cafile=str(self.ca_pem_path))
        return context
