"""Server certificates a TLS client must refuse (RFC 2818 3.1, RFC 6125 6), for the lab's
HTTPS server to present in the HTTPS-refusal cases.

Three kinds, each a real certificate on a real handshake:

- ``untrusted-ca``: issued by a second CA that no client was told to trust (trustme);
- ``expired``: issued by the lab CA, valid for the name, but its validity ended a day
  ago (``cryptography``: trustme cannot backdate);
- ``wrong-name``: issued by the lab CA for another name than the one the client asked for.

Usage::

    context = refused_context("expired", "expired.lab.example", LabCA(state_dir))
    https_server.present("expired.lab.example", context)    # for that SNI name only
"""

from __future__ import annotations

import datetime
import ssl
import tempfile
from pathlib import Path
from typing import Literal, get_args

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from framework.services.tls import LabCA

RefusedKind = Literal["untrusted-ca", "expired", "wrong-name"]
REFUSED_KINDS: tuple[str, ...] = get_args(RefusedKind)
#: The name a wrong-name certificate is issued for (never one a lab client asks for).
OTHER_NAME = "another-server.invalid"


def _context(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="hil-refused-") as tmp:
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert.write_bytes(cert_pem)
        key.touch(0o600)
        key.write_bytes(key_pem)
        context.load_cert_chain(cert, key)
    return context


def expired_certificate(name: str, ca: LabCA) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for ``name`` from the lab CA, expired one day ago."""
    ca_cert_pem, ca_key_pem = ca.signer()
    issuer = x509.load_pem_x509_certificate(ca_cert_pem)
    issuer_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now - datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def refused_context(kind: str, name: str, ca: LabCA) -> ssl.SSLContext:
    """A server context presenting, to a client asking for ``name``, a certificate of
    ``kind`` that a verifying client trusting only the lab CA must refuse."""
    if kind == "untrusted-ca":
        leaf = trustme.CA(organization_name="not the hil400hd lab").issue_cert(name)
        return _context(b"".join(b.bytes() for b in leaf.cert_chain_pems),
                        leaf.private_key_pem.bytes())
    if kind == "expired":
        return _context(*expired_certificate(name, ca))
    if kind == "wrong-name":
        return ca.server_context([OTHER_NAME])
    raise ValueError(f"unknown refused-certificate kind {kind!r}; known: "
                     f"{', '.join(REFUSED_KINDS)}")


__all__ = ["OTHER_NAME", "REFUSED_KINDS", "RefusedKind", "expired_certificate",
           "refused_context"]
