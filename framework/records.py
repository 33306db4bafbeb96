"""The certification record's types: what a run writes and every reader loads.

``reports/<run-id>/certification.json`` holds ``run``, ``phones``, ``cases`` and
``summary`` (see framework.runner.record for the writer). The runner builds these records
and the renderers (framework.report), the release diff, the explorer and the benchmarks
read them back through the same types, so a key is declared once, here.

The models are pydantic v2, frozen and ``extra="forbid"``: an unknown key in an old record
(a renamed or a removed one) is an error naming the file and the key, never silently
dropped. :meth:`Record.to_json` gives exactly the keys the JSON file has: an optional key
is absent when it was never set (``exclude_unset``), present (even as ``null``) when it
was, so ``to_json(from_json(x)) == x`` for every record written so far.

This module is at the bottom of the import layers (it imports nothing of framework but
framework.errors): the runner and the report both use it, neither imports the other for it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from framework.errors import InputError

VERDICTS = ("passed", "failed", "broken", "observed", "skipped")

#: A verdict as the record spells it (framework.runner.verdict.Verdict's values).
VerdictName = Literal["passed", "failed", "broken", "observed", "skipped"]

#: Seconds or a timestamp. ``float | int`` (not ``float``) so that an integer in a record
#: stays an integer when written back: the round trip keeps the file's bytes.
Number = float | int


class RecordError(InputError):
    """A certification record cannot be read; the message names the file and why.

    An input error (the record file is the input), so a ValueError too.
    """


class Record(BaseModel):
    """Base of every record type: frozen, no unknown keys, JSON as the file has it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> dict[str, Any]:
        """The JSON object as certification.json holds it (unset optional keys absent)."""
        return self.model_dump(mode="json", exclude_unset=True)

    @classmethod
    def from_json(cls, data: Any, *, where: str = "record") -> Self:
        """Validate one JSON object; :class:`RecordError` (one line, naming ``where`` and
        the keys at fault) when it does not fit."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise RecordError(f"{where}: {describe(exc)}") from None

    def amended(self, **fields: Any) -> Self:
        """A copy with ``fields`` replaced (or added), validated again (``model_copy``
        would not validate). The new fields count as set: they are written."""
        kept = {k: getattr(self, k) for k in self.model_fields_set}
        return type(self).from_json({**kept, **fields},
                                    where=f"amending a {type(self).__name__}")


def describe(exc: ValidationError, limit: int = 4) -> str:
    """A pydantic error as one short line: ``unknown key 'x'``, ``missing key 'y'``..."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key {loc!r}")
        elif err["type"] == "missing":
            parts.append(f"missing key {loc!r}")
        else:
            parts.append(f"{loc!r}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


class ObservedRequest(Record):
    """One request the phone made (or a DNS query), as judged for its case."""

    time: Number
    protocol: str
    url: str | None
    host: str | None
    outcome: str
    detail: str
    #: Seconds after the case's trigger (the runner's cases; not the release install's).
    offset_s: Number | None = None
    #: Bytes the server sent (absent in older records and where not counted).
    bytes: int | None = None


class DhcpEvent(Record):
    """One DHCP message of a case's exchange (the report's timeline): its type, when, and
    whether the phone sent it (``received`` by the server) or the server did (``sent``)."""

    type: str
    time: Number
    direction: str


class EvidenceItem(Record):
    """A file of a case's evidence bundle: path relative to the run directory, kind, size
    and SHA-256 (so the report can prove the file was not changed since)."""

    kind: str
    path: str
    bytes: int
    sha256: str


class GroundRecord(Record):
    """Why an expectation is expected (framework.resolution.grounds.Ground.to_dict())."""

    kind: Literal["manual", "field", "lab"]
    source: str
    quote: str


class AssertionRecord(Record):
    """One expectation of a case with its ground, whether the profile judged it, and
    whether it held (framework.runner.verdict.Judgement.assertions)."""

    id: str
    what: str
    expected: str
    judged: bool
    ground: GroundRecord
    holds: bool
    detail: str


class CaseResult(Record):
    """One case on one phone: what was expected, what the phone did, the verdict.

    Built by the runner's lanes (framework.runner), the release install and its upgrade
    cases (framework.release); read by every rendering.
    """

    id: str
    group: str
    title: str
    manual: str
    phone: str
    model: str
    mac: str
    firmware: str | None
    profile: str | None
    url_option: int
    options: dict[str, str]
    #: The resolution core's expectation (ExpectedProvisioning.to_dict()); None when the
    #: case did not get that far, and for the upgrade cases.
    expected: dict[str, Any] | None
    observed: list[ObservedRequest]
    verdict: VerdictName
    reason: str
    start: Number
    end: Number
    evidence: list[EvidenceItem]
    # --- set by the runner once the phone was triggered -------------------------------
    trigger: str | None = None
    ack_at: list[Number] | None = None
    cycles: int | None = None
    differences: list[str] | None = None
    matches_core: bool | None = None
    #: The verdict the case had before a rig fault made it broken.
    would_have_been: VerdictName | None = None
    #: A framework error's traceback (the case is broken).
    traceback: str | None = None
    #: Why the evidence bundle could not be written.
    evidence_error: str | None = None
    #: Requests after the verdict (framework.runner.cycle.amend_late).
    late: list[ObservedRequest] | None = None
    #: Phone settings the lab served in the phone's configuration file right before this
    #: case (framework.runner.settings), and the DHCP parameter request list (option 55)
    #: of the case's first cycle, which proves the URL option setting on the wire.
    settings: dict[str, str] | None = None
    parameter_list: list[int] | None = None
    #: Each assertion of the verdict with its ground (issue 16); absent in older records.
    assertions: list[AssertionRecord] | None = None
    #: Differences URL equivalence forgave (RFC 3986 6.2.2): notes, never failures.
    notes: list[str] | None = None
    #: The DHCP messages of the case from its trigger to its verdict (issue 17: the
    #: report's timeline); absent in older records.
    dhcp: list[DhcpEvent] | None = None
    #: The settle window the runner waited for (seconds of quiet after the last request).
    settle_s: Number | None = None
    #: A case run under a lab condition (framework.runner.failures): the condition, each
    #: request after the fault (seconds after the ACK), attempts per URL with the gaps
    #: between them, and the TLS handshake outcomes; absent in older records.
    aftermath: dict[str, Any] | None = None
    # --- the upgrade cases (framework.release.behaviour) -------------------------------
    running: str | None = None
    offer: dict[str, Any] | None = None
    # --- a merged record (framework.report.merge) --------------------------------------
    rig: str | None = None
    place: str | None = None
    rig_phone: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(case id, phone): one entry per pair in a record; an amendment replaces it."""
        return self.id, self.phone


class PhoneRecord(Record):
    """One phone of the run: what the rig says, what the phone reported, its state."""

    name: str
    model: str
    mac: str
    address: str
    firmware: str | None
    expected_firmware: str | None
    profile: str | None
    #: ``pending``, ``ok`` or ``quarantined`` (then ``broken_reason`` says why).
    state: str
    broken_reason: str | None = None
    #: Settings the lab served this phone in its configuration file (last value of each).
    settings: dict[str, str] | None = None
    # --- the release install (framework.release.install) ------------------------------
    firmware_before: str | None = None
    release_install: dict[str, Any] | None = None
    release_evidence: list[EvidenceItem] | None = None
    # --- a merged record ----------------------------------------------------------------
    rig: str | None = None
    place: str | None = None
    rig_phone: str | None = None


class RunRecord(Record):
    """The run: which rig, which framework revision, when, and how it ended."""

    id: str
    rig: str
    framework_revision: str
    start: Number | None
    end: Number | None
    #: ``running``, ``finished``, ``interrupted``...; a merged run joins its sources'.
    status: str
    rig_file: str | None = None
    host: str | None = None
    trigger: str | None = None
    settle_s: Number | None = None
    #: The run's timings: boot and request timeouts, settle window, and the random
    #: provisioning time the lab served (None: the phones kept their own).
    timings: dict[str, Any] | None = None
    profile_override: str | None = None
    #: ``--switch NAME=VALUE`` overrides applied to every phone's profile (issue 16: e.g.
    #: ``url_compare=byte-exact``); None: each profile's own switches.
    switches: dict[str, Any] | None = None
    # --- the release install -----------------------------------------------------------
    release: dict[str, Any] | None = None
    restore: bool | None = None
    # --- a merged record (framework.report.merge) --------------------------------------
    kind: str | None = None
    merged_at: Number | None = None
    runs: list[dict[str, Any]] | None = None
    places: list[dict[str, Any]] | None = None


class CertificationDocument(Record):
    """A whole certification.json."""

    run: RunRecord
    phones: list[PhoneRecord]
    cases: list[CaseResult]
    #: Counts per verdict and ``total`` (:func:`summarise`), in the order written; when a
    #: case carries assertions, also ``by_ground``: ground kind -> verdict -> count.
    summary: dict[str, int | dict[str, dict[str, int]]]

    @classmethod
    def from_json(cls, data: Any, *, where: str = "record") -> Self:
        """As :meth:`Record.from_json`; a case at fault is named by its index, id and phone."""
        if not isinstance(data, Mapping):
            raise RecordError(f"{where}: not a JSON object")
        for key in ("run", "phones", "cases", "summary"):
            if key not in data:
                raise RecordError(f"{where}: missing top-level key {key!r}")
        cases = data["cases"]
        if not isinstance(cases, list):
            raise RecordError(f"{where}: 'cases' is not a list")
        typed = [CaseResult.from_json(c, where=f"{where}: {_case_where(i, c)}")
                 for i, c in enumerate(cases)]
        phones = [PhoneRecord.from_json(p, where=f"{where}: phones[{i}]")
                  for i, p in enumerate(data["phones"] or [])]
        run = RunRecord.from_json(data["run"], where=f"{where}: run")
        rest = {k: v for k, v in data.items() if k not in ("run", "phones", "cases")}
        try:
            return cls.model_validate({**rest, "run": run, "phones": phones, "cases": typed})
        except ValidationError as exc:
            raise RecordError(f"{where}: {describe(exc)}") from None


def _case_where(index: int, case: Any) -> str:
    if isinstance(case, Mapping):
        return f"case {case.get('id')!r} on {case.get('phone')!r} (cases[{index}])"
    return f"cases[{index}]"


def summarise(cases: Iterable[CaseResult]) -> dict[str, int | dict[str, dict[str, int]]]:
    """Cases per verdict (every verdict named, in :data:`VERDICTS` order) and the total;
    ``by_ground`` (:func:`by_ground`) when any case carries assertions."""
    cases = list(cases)
    counts: Counter[str] = Counter(c.verdict for c in cases)
    out: dict[str, int | dict[str, dict[str, int]]] = {v: counts.get(v, 0) for v in VERDICTS}
    out["total"] = len(cases)
    grounds = by_ground(cases)
    if grounds:
        out["by_ground"] = grounds
    return out


def assertion_verdict(case: CaseResult, a: AssertionRecord) -> str:
    """The verdict one assertion gives: ``passed``/``failed`` when judged, ``observed``
    when its ground is not judged (or the case is not promised); a broken or skipped case
    gives its own verdict to every assertion."""
    if case.verdict in ("broken", "skipped"):
        return case.verdict
    if not a.judged:
        return "observed"
    return "passed" if a.holds else "failed"


def by_ground_line(summary: Mapping[str, Any]) -> str | None:
    """``summary.by_ground`` in one line (``by ground: manual 40 passed, 2 failed; field
    12 passed``), or None for a record without grounds."""
    grounds = summary.get("by_ground")
    if not isinstance(grounds, Mapping) or not grounds:
        return None
    return "by ground: " + "; ".join(
        f"{kind} " + ", ".join(f"{n} {v}" for v, n in counts.items())
        for kind, counts in grounds.items())


def by_ground(cases: Iterable[CaseResult]) -> dict[str, dict[str, int]]:
    """Assertions per ground kind and verdict (``manual`` -> ``passed`` -> 12)."""
    out: dict[str, Counter[str]] = {}
    for case in cases:
        for a in case.assertions or []:
            out.setdefault(a.ground.kind, Counter())[assertion_verdict(case, a)] += 1
    return {kind: {v: counts[v] for v in VERDICTS if counts[v]}
            for kind, counts in sorted(out.items())}


def document(run: RunRecord, phones: Iterable[PhoneRecord],
             cases: Iterable[CaseResult]) -> CertificationDocument:
    """The whole record of ``cases``, its summary counted from them."""
    cases = list(cases)
    return CertificationDocument(run=run, phones=list(phones), cases=cases,
                                 summary=summarise(cases))


# --- files --------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def evidence_item(path: Path, run_dir: Path, kind: str) -> EvidenceItem:
    """An evidence file as the record names it: path (relative), kind, size, SHA-256."""
    return EvidenceItem(kind=kind, path=str(path.relative_to(run_dir)),
                        bytes=path.stat().st_size, sha256=sha256_file(path))


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader (or a crash) sees the old file or the new
    one, never half of it: a temporary file in the same directory, fsynced, renamed."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def dumps(doc: CertificationDocument) -> str:
    """certification.json's text (the writer and the merge write exactly this)."""
    return json.dumps(doc.to_json(), indent=2, sort_keys=True)


def load_cases(jsonl: Path) -> list[CaseResult]:
    """Finished cases from ``cases.jsonl``, in the order they first finished; a case
    written again (amended) takes its last version; a torn line (a crash mid-write) is
    dropped; a whole line that is not a case is a :class:`RecordError`."""
    out: dict[tuple[str, str], CaseResult] = {}
    for n, line in enumerate(jsonl.read_text().splitlines(), 1):
        try:
            raw = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(raw, dict):
            case = CaseResult.from_json(raw, where=f"{jsonl}:{n}: {_case_where(n - 1, raw)}")
            out[case.key] = case
    return list(out.values())


def load_document(path: Path) -> CertificationDocument:
    """One certification.json file, typed; :class:`RecordError` naming the file (and the
    case) when it is missing, not JSON, or has a key the types do not know."""
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise RecordError(f"{path}: no certification record there") from None
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    return CertificationDocument.from_json(raw, where=str(path))


def load_record(path: Path) -> CertificationDocument:
    """A run's record from its directory or its certification.json, rebuilt from
    cases.jsonl when the run died before its last rewrite."""
    run_dir = path if path.is_dir() else path.parent
    doc = load_document(run_dir / "certification.json")
    jsonl = run_dir / "cases.jsonl"
    if jsonl.exists():
        cases = load_cases(jsonl)
        # cases.jsonl is durable first: more cases, or an amendment not yet rewritten
        if len(cases) >= len(doc.cases) and cases != doc.cases:
            doc = doc.amended(cases=cases, summary=summarise(cases))
    return doc
