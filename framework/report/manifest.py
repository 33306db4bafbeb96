"""A run's MANIFEST.json: every file of the run bound to the record, the framework and the
rig, in a DSSE envelope around an in-toto Statement v1 (signed with Ed25519 when asked).

``reports/<run-id>/MANIFEST.json``::

    {"payloadType": "application/vnd.in-toto+json", "payload": <base64 statement>,
     "signatures": [{"keyid": <fingerprint>, "sig": <base64>}]}   # [] when unsigned

The statement's ``subject`` lists EVERY file of the run directory except MANIFEST.json
itself (path relative to the run directory, sha256, size), sorted by name. Its predicate
(``predicateType`` :data:`PREDICATE_TYPE`) names the framework (version, git revision,
dirty), the rig file (name and sha256 of the file as written: secret references, never
values), the firmware images of the record's release, the resolution profile(s) and
their switches, the record's own sha256, the signer's public key when signed, and
``evidence_digest``.

``evidence_digest`` is the sha256 of the lines ``"<name> <sha256>\\n"`` of every subject,
sorted by name, EXCEPT the renderings (:func:`is_rendering`: certification.html,
certification.pdf, junit.xml, allure-report/**, allure-results/environment.properties, allurerc.json).
The renderings are written before the manifest and show this digest (they cannot show the
hash of a manifest that lists them), so a reader of any rendering can check it names the
record and the evidence they hold: ``hil report verify`` prints it too.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.records import CertificationDocument, atomic_write, load_document
from framework.records import sha256_file as _sha256
from framework.report import signing

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

MANIFEST = "MANIFEST.json"
RECORD = "certification.json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://hil400hd.example/certification/v1"

_RENDERINGS = {"certification.html", "certification.pdf", "junit.xml",
               "allure-results/environment.properties", "allurerc.json"}


def is_rendering(name: str) -> bool:
    """A file rendered from the record (it shows the evidence digest, so it is not in it)."""
    return name in _RENDERINGS or name.startswith("allure-report/")


@dataclass(frozen=True)
class Subject:
    name: str
    sha256: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "digest": {"sha256": self.sha256},
                "annotations": {"size": self.size}}


@dataclass(frozen=True)
class Seal:
    """What the renderings show: the evidence digest and, when signed, the key."""

    evidence_digest: str
    fingerprint: str | None = None

    def text(self) -> str:
        key = f" · signed by key {signing.short(self.fingerprint)}" if self.fingerprint else ""
        return f"evidence sha256:{self.evidence_digest}{key}"


def scan(run_dir: Path) -> list[Subject]:
    """Every file of the run (but MANIFEST.json), sorted by name."""
    out = []
    for root, dirs, files in os.walk(run_dir):
        dirs.sort()
        for f in files:
            path = Path(root) / f
            name = path.relative_to(run_dir).as_posix()
            if name == MANIFEST or name.startswith(f".{MANIFEST}.") or not path.is_file():
                continue
            out.append(Subject(name, _sha256(path), path.stat().st_size))
    return sorted(out, key=lambda s: s.name)


def digest_of(subjects: list[Subject]) -> str:
    """The evidence digest of ``subjects`` (see the module's docstring)."""
    h = hashlib.sha256()
    for s in sorted(subjects, key=lambda s: s.name):
        if not is_rendering(s.name):
            h.update(f"{s.name} {s.sha256}\n".encode())
    return h.hexdigest()


def evidence_digest(run_dir: Path) -> str:
    """The evidence digest of the run's files as they are now (what renderings show)."""
    return digest_of(scan(run_dir))


def _framework(revision: str | None) -> dict[str, Any]:
    from importlib import metadata

    try:
        version = metadata.version("hil400hd")
    except metadata.PackageNotFoundError:
        version = "unknown"
    rev = revision or "unknown"
    return {"name": "hil400hd", "version": version, "revision": rev.removesuffix("-dirty"),
            "dirty": rev.endswith("-dirty")}


def _rig(doc: CertificationDocument) -> dict[str, Any]:
    out: dict[str, Any] = {"name": doc.run.rig, "file": None, "sha256": None}
    if doc.run.rig_file:
        path = Path(doc.run.rig_file)
        out["file"] = path.name
        out["sha256"] = _sha256(path) if path.is_file() else None
    return out


def _firmware(doc: CertificationDocument) -> list[dict[str, Any]]:
    release = doc.run.release or {}
    return [{k: image.get(k) for k in ("file", "model", "version", "sha256", "bytes")}
            for image in release.get("images", []) if isinstance(image, dict)]


def _resolution(doc: CertificationDocument) -> dict[str, Any]:
    from framework.resolution.model import ResolutionInputError
    from framework.resolution.profiles import get_profile

    names = sorted({p for p in [doc.run.profile_override,
                                *(c.profile for c in doc.cases),
                                *(p.profile for p in doc.phones)] if p})
    profiles = []
    for name in names:
        try:
            profiles.append(get_profile(name).to_dict())
        except ResolutionInputError:
            profiles.append({"name": name})
    return {"profile_override": doc.run.profile_override, "profiles": profiles}


def statement(run_dir: Path, subjects: list[Subject], *,
              signer: bytes | None = None) -> dict[str, Any]:
    """The in-toto statement of ``run_dir`` (its record must be readable)."""
    doc = load_document(run_dir / RECORD)
    record = next((s for s in subjects if s.name == RECORD), None)
    predicate: dict[str, Any] = {
        "run": {"id": doc.run.id, "status": doc.run.status, "start": doc.run.start,
                "end": doc.run.end, "summary": doc.summary},
        "framework": _framework(doc.run.framework_revision),
        "rig": _rig(doc),
        "firmware": _firmware(doc),
        "resolution": _resolution(doc),
        "record": {"name": RECORD, "sha256": record.sha256 if record else None},
        "evidence_digest": digest_of(subjects),
    }
    if signer is not None:
        predicate["signer"] = {"keyid": hashlib.sha256(signer).hexdigest(),
                               "public_key": base64.b64encode(signer).decode(),
                               "algorithm": "ed25519"}
    return {"_type": STATEMENT_TYPE, "subject": [s.to_json() for s in subjects],
            "predicateType": PREDICATE_TYPE, "predicate": predicate}


def write(run_dir: Path, key: Ed25519PrivateKey | None = None) -> Seal:
    """Write ``run_dir/MANIFEST.json`` for the files there now, signed with ``key`` when
    given. :class:`RecordError` when the run has no readable record."""
    subjects = scan(run_dir)
    stmt = statement(run_dir, subjects, signer=signing.raw_public(key) if key else None)
    payload = json.dumps(stmt, indent=1, sort_keys=True).encode()
    envelope = {"payloadType": PAYLOAD_TYPE, "payload": base64.b64encode(payload).decode(),
                "signatures": [signing.sign(key, PAYLOAD_TYPE, payload)] if key else []}
    atomic_write(run_dir / MANIFEST, json.dumps(envelope, indent=2) + "\n")
    return Seal(stmt["predicate"]["evidence_digest"], signing.fingerprint(key) if key else None)


# --- verification -------------------------------------------------------------------------

_FILE_PREFIXES = ("added: ", "removed: ", "changed: ", "record changed: ")


@dataclass
class Verification:
    """What ``hil report verify`` found: one line per problem (none: it verifies)."""

    run_dir: Path
    problems: list[str] = field(default_factory=list)
    files: int = 0
    evidence_digest: str | None = None  # recomputed from the files
    signed_by: str | None = None  # fingerprint of a valid signature

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def file_problems(self) -> list[str]:
        """Files added, removed or changed since the manifest was written."""
        return [p for p in self.problems if p.startswith(_FILE_PREFIXES)]

    def to_json(self) -> dict[str, Any]:
        return {"run": str(self.run_dir), "verified": self.ok, "problems": self.problems,
                "files": self.files, "evidence_digest": self.evidence_digest,
                "signed_by": self.signed_by}


def _decode(envelope: Any) -> tuple[bytes | None, dict[str, Any] | None, str | None]:
    """(payload bytes, statement, problem) of an envelope."""
    if not isinstance(envelope, dict) or not isinstance(envelope.get("payload"), str):
        return None, None, "manifest changed: not a DSSE envelope"
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        return None, None, f"manifest changed: payloadType is not {PAYLOAD_TYPE}"
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
    except (binascii.Error, ValueError):
        return None, None, "manifest changed: payload is not base64"
    try:
        stmt = json.loads(payload)
    except ValueError:
        return payload, None, "manifest changed: payload is not JSON"
    if (not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_TYPE
            or stmt.get("predicateType") != PREDICATE_TYPE
            or not isinstance(stmt.get("subject"), list)
            or not isinstance(stmt.get("predicate"), dict)):
        return payload, None, "manifest changed: payload is not a certification statement"
    return payload, stmt, None


def _listed(stmt: dict[str, Any]) -> dict[str, Subject] | None:
    out = {}
    for s in stmt["subject"]:
        try:
            sub = Subject(str(s["name"]), str(s["digest"]["sha256"]),
                          int(s["annotations"]["size"]))
        except (KeyError, TypeError, ValueError):
            return None
        out[sub.name] = sub
    return out


def _signatures(v: Verification, envelope: dict[str, Any], payload: bytes | None,
                stmt: dict[str, Any] | None, expected: bytes | None) -> None:
    sigs = envelope.get("signatures") if isinstance(envelope, dict) else None
    if not sigs:
        if expected is not None:
            v.problems.append("not signed")
        return
    if not isinstance(sigs, list) or not all(isinstance(s, dict) for s in sigs):
        v.problems.append("bad signature: signatures is not a list of DSSE signatures")
        return
    signer = (stmt or {}).get("predicate", {}).get("signer") or {}
    try:
        public = base64.b64decode(str(signer.get("public_key", "")), validate=True)
    except (binascii.Error, ValueError):
        public = b""
    if payload is None:
        return  # the envelope's problem is already named
    if not public:
        if expected is None:
            v.problems.append("bad signature: the statement names no signer key")
            return
        public = expected
    for sig in sigs:
        why = signing.check(public, sig, PAYLOAD_TYPE, payload)
        if why is None and expected is not None and public != expected:
            why = (f"wrong key: signed by {signing.short(hashlib.sha256(public).hexdigest())}, "
                   f"expected {signing.short(hashlib.sha256(expected).hexdigest())}")
        if why:
            v.problems.append(why)
        else:
            v.signed_by = hashlib.sha256(public).hexdigest()


def verify(run_dir: Path, expected: bytes | None = None) -> Verification:
    """Check ``run_dir`` against its MANIFEST.json: every file's hash, the record's, the
    evidence digest and the signature (by the raw public key ``expected`` when given)."""
    v = Verification(run_dir)
    actual = {s.name: s for s in scan(run_dir)}
    v.files = len(actual)
    v.evidence_digest = digest_of(list(actual.values()))
    try:
        envelope = json.loads((run_dir / MANIFEST).read_text())
    except FileNotFoundError:
        v.problems.append(f"no {MANIFEST}")
        return v
    except (OSError, ValueError):
        v.problems.append(f"manifest changed: {MANIFEST} is not JSON")
        return v
    payload, stmt, problem = _decode(envelope)
    if problem:
        v.problems.append(problem)
    _signatures(v, envelope, payload, stmt, expected)
    if stmt is None:
        return v
    listed = _listed(stmt)
    if listed is None:
        v.problems.append("manifest changed: a subject is not {name, digest.sha256, size}")
        return v
    pred = stmt["predicate"]
    if pred.get("evidence_digest") != digest_of(list(listed.values())):
        v.problems.append("manifest changed: evidence_digest is not the digest of its subjects")
    record = listed.get(RECORD)
    if (pred.get("record") or {}).get("sha256") != (record.sha256 if record else None):
        v.problems.append("manifest changed: the record's sha256 is not its subject's")
    for name in sorted(set(actual) | set(listed)):
        a, m = actual.get(name), listed.get(name)
        if m is None:
            v.problems.append(f"added: {name}")
        elif a is None:
            v.problems.append(f"removed: {name}")
        elif (a.sha256, a.size) != (m.sha256, m.size):
            what = "record changed" if name == RECORD else "changed"
            v.problems.append(f"{what}: {name} (sha256 {a.sha256[:16]}…, manifest "
                              f"{m.sha256[:16]}…)")
    return v


def seal_of(run_dir: Path) -> Seal | None:
    """The seal an existing MANIFEST.json states (None when there is none readable)."""
    try:
        envelope = json.loads((run_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    _, stmt, problem = _decode(envelope)
    if stmt is None or problem:
        return None
    pred = stmt["predicate"]
    signer = pred.get("signer") or {}
    return Seal(str(pred.get("evidence_digest")),
                str(signer["keyid"]) if envelope.get("signatures") and signer.get("keyid")
                else None)


__all__ = ["MANIFEST", "Seal", "Subject", "Verification", "evidence_digest",
           "is_rendering", "scan", "seal_of", "verify", "write"]
