"""Ed25519 keys and DSSE signatures for a run's MANIFEST.json.

A key is given as a *reference*, like every secret of this project: a path to a PEM file,
or ``env:NAME`` (the PEM text in the environment variable NAME, else in the secrets file,
framework.rig.secrets). Private keys are PEM PKCS#8, public keys PEM SPKI
(``hil report keygen OUT`` writes both). A key's value is never copied into a run, printed
or logged: errors name the reference only.

Signatures follow DSSE (https://github.com/secure-systems-lab/dsse, protocol.md): the
signed bytes are PAE(payloadType, payload) and ``keyid`` is the key's fingerprint, the
SHA-256 of its raw 32-byte public key in hex (:func:`fingerprint`; 16 characters shown).
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from framework.errors import InputError

#: How many hex characters of a fingerprint the renderings and messages show.
SHOWN = 16


class KeyFileError(InputError):
    """A key reference that cannot be used: missing file, unset variable, not an Ed25519
    key of the expected kind. Names the reference, never the key."""


def _pem(ref: str, what: str) -> bytes:
    """The PEM text a reference points at (``env:NAME`` or a file path)."""
    if ref.startswith("env:"):
        from framework.rig.secrets import SecretError, SecretRef

        try:
            value = SecretRef(env=ref[4:]).resolve()
        except SecretError as exc:
            raise KeyFileError(f"{what} {ref}: {exc}") from None
        except ValueError:
            raise KeyFileError(f"{what} {ref}: expected env:NAME with NAME a variable name") \
                from None
        if value.lstrip().startswith("-----BEGIN"):
            return value.encode()
        ref = value  # the variable names the key file
    path = Path(ref).expanduser()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"{what} {ref}: no such file") from None
    except OSError as exc:
        raise KeyFileError(f"{what} {ref}: cannot read ({exc.strerror or exc})") from None


def load_private_key(ref: str) -> Ed25519PrivateKey:
    """The Ed25519 private key of ``ref`` (PEM PKCS#8, unencrypted)."""
    pem = _pem(ref, "signing key")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(f"signing key {ref}: not a PEM private key (PKCS#8, unencrypted)") \
            from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"signing key {ref}: not an Ed25519 key")
    return key


def load_public_key(ref: str) -> Ed25519PublicKey:
    """The Ed25519 public key of ``ref`` (PEM SPKI)."""
    pem = _pem(ref, "public key")
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError):
        raise KeyFileError(f"public key {ref}: not a PEM public key (SPKI)") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"public key {ref}: not an Ed25519 key")
    return key


def raw_public(key: Ed25519PublicKey | Ed25519PrivateKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """SHA-256 of the raw public key, hex (the DSSE ``keyid``)."""
    return hashlib.sha256(raw_public(key)).hexdigest()


def short(fp: str) -> str:
    return fp[:SHOWN]


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is actually signed."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def sign(key: Ed25519PrivateKey, payload_type: str, payload: bytes) -> dict[str, str]:
    """One DSSE signature object of ``payload``."""
    sig = key.sign(pae(payload_type, payload))
    return {"keyid": fingerprint(key), "sig": base64.b64encode(sig).decode()}


def check(public_raw: bytes, signature: dict[str, Any], payload_type: str,
          payload: bytes) -> str | None:
    """None when ``signature`` is a valid signature of the payload by that key; else why
    not: ``bad signature: ...`` (malformed, another keyid) or ``manifest changed: ...``."""
    try:
        public = Ed25519PublicKey.from_public_bytes(public_raw)
    except ValueError:
        return "bad signature: the signer's public key in the manifest is not an Ed25519 key"
    try:
        sig = base64.b64decode(str(signature.get("sig", "")), validate=True)
    except ValueError:
        return "bad signature: sig is not base64"
    if len(sig) != 64:
        return "bad signature: not an Ed25519 signature (64 bytes)"
    if signature.get("keyid") != fingerprint(public):
        return (f"bad signature: keyid {short(str(signature.get('keyid')))} is not the "
                f"signer's key {short(fingerprint(public))}")
    try:
        public.verify(sig, pae(payload_type, payload))
    except InvalidSignature:
        return "manifest changed: payload does not match its signature"
    return None


def keygen(out: Path) -> tuple[Path, Path, str]:
    """Write a new key pair: ``out`` (private, PKCS#8 PEM, mode 0600) and ``out.pub``
    (SPKI PEM). Refuses to overwrite. Returns both paths and the fingerprint."""
    pub = out.with_name(out.name + ".pub")
    for p in (out, pub):
        if p.exists():
            raise KeyFileError(f"{p}: exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(private_pem)
        pub.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    except OSError as exc:
        raise KeyFileError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return out, pub, fingerprint(key)
