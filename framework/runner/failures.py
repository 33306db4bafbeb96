"""Failure paths and HTTPS refusal (issue 16 items 5 and 6): cases that need a lab
condition, applied on the lab's own servers for one case only and removed after it.

A :class:`LabCondition` acts on the real wire: a configuration or firmware file the
content store answers not-found for (HTTP 404, TFTP error 1, FTP 550), a transfer cut
mid-way, a server that takes the request and never answers, a host name the lab DNS
answers NXDOMAIN for, or a server certificate a TLS client must refuse
(framework.services.badcerts), presented for one SNI name only. A file condition is keyed
by the phone's MAC in its file name, so lanes never see each other's. A refused
certificate's host name is the case's own but shared by every lane running that case: it
stays presented until the last lane holding it lets go, and each connection's evidence
records whether that connection was shown it (framework.services.tls_terminator).

Failure paths are observed, never judged: the record keeps what the phone did after the
fault (``aftermath``: each request with its time after the ACK, how often each URL was
asked for and after how long). The HTTPS-refusal cases are judged (ground
``security/https-refusal``): the phone must not complete a request for a file over a
connection whose certificate it must refuse; the TLS server's handshake outcomes are the
evidence.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from framework.records import CaseResult, ObservedRequest
from framework.resolution import ExpectedProvisioning
from framework.resolution.grounds import GROUNDS, judged_kinds
from framework.runner.catalogue import Case
from framework.runner.cycle import is_file_request, observed, offset_dicts
from framework.runner.verdict import Judgement, Verdict
from framework.services.badcerts import refused_context
from framework.services.log import Outcome

ConditionKind = Literal["config-missing", "firmware-missing", "cut", "silent", "nxdomain",
                        "untrusted-ca", "expired", "wrong-name"]
TLS_KINDS = ("untrusted-ca", "expired", "wrong-name")
HTTPS_REFUSAL = "security/https-refusal"
#: What a cut configuration announces (its full size) before the transfer breaks.
CUT_BODY = b"# 400HD provisioning lab: a configuration cut mid-transfer\n" * 80


@dataclass(frozen=True)
class LabCondition:
    """One fault of the lab's servers for one case: ``kind``, and the host ``name`` it
    concerns (DNS and TLS kinds), or ``after`` bytes before a cut."""

    kind: ConditionKind
    name: str | None = None
    after: int = 1024

    def describe(self) -> str:
        return {
            "config-missing": "the configuration file is missing (not-found)",
            "firmware-missing": "the firmware file is missing (not-found)",
            "cut": f"the configuration transfer is cut after {self.after} bytes",
            "silent": "the server takes the configuration request and never answers",
            "nxdomain": f"the lab DNS answers NXDOMAIN for {self.name}",
            "untrusted-ca": f"HTTPS for {self.name} presents a certificate from an "
                            "untrusted CA",
            "expired": f"HTTPS for {self.name} presents an expired certificate",
            "wrong-name": f"HTTPS for {self.name} presents a certificate for another name",
        }[self.kind]


@dataclass(frozen=True)
class ConditionCase(Case):
    """A catalogue case run under a lab condition; judged only for HTTPS refusal."""

    condition: LabCondition | None = None

    @property
    def judged(self) -> bool:
        return self.condition is not None and self.condition.kind in TLS_KINDS


def _paths(expected: ExpectedProvisioning, purpose: str) -> list[str]:
    return [urlsplit(r.url).path for r in expected.requests if r.purpose == purpose]


#: Lanes holding a named TLS condition: (services, kind, name) -> count. Every phone's lane
#: runs the same HTTPS-refusal case against the same host name, so the certificate is
#: presented while any lane holds it and put back when the last one lets go.
_HOLDERS: dict[tuple[int, str, str], int] = {}
_HOLDERS_LOCK = threading.Lock()


@contextlib.contextmanager
def applied(condition: LabCondition, services: Any, expected: ExpectedProvisioning,
            lab_ip: str) -> Iterator[None]:
    """``condition`` on ``services`` (framework.services.ProvisioningServices) for the
    duration of the block; what it changed is put back after (a shared TLS name when no
    other lane still holds it)."""
    content, zone = services.content, services.zone
    undo: list[Any] = []
    try:
        if condition.kind in ("config-missing", "firmware-missing", "cut", "silent"):
            purpose = "firmware" if condition.kind == "firmware-missing" else "configuration"
            for path in _paths(expected, purpose):
                before = content.policy_for(path)
                if condition.kind == "cut":
                    content.cut(path, condition.after, CUT_BODY)
                elif condition.kind == "silent":
                    content.silent(path)
                else:
                    content.not_found(path)
                undo.append(lambda p=path, b=before: content.set(p, b))
        elif condition.kind == "nxdomain":
            assert condition.name is not None
            zone.remove(condition.name)  # a name of its own: nothing to put back
        else:
            name = condition.name
            assert name is not None
            if services.https is None:
                raise ValueError("an HTTPS-refusal case needs the lab's HTTPS server")
            key = (id(services), condition.kind, name.lower())
            with _HOLDERS_LOCK:
                if not _HOLDERS.get(key):
                    services.https.present(name, refused_context(condition.kind, name,
                                                                 services.ca))
                    zone.set(name, lab_ip)
                _HOLDERS[key] = _HOLDERS.get(key, 0) + 1

            def release() -> None:
                with _HOLDERS_LOCK:
                    _HOLDERS[key] -= 1
                    if not _HOLDERS[key]:
                        del _HOLDERS[key]
                        services.https.present(name, None)
                        zone.remove(name)
            undo.append(release)
        yield
    finally:
        for step in reversed(undo):
            step()


def _rel(t: float, since: float) -> float:
    return round(t - since, 3)


def _requests(records: Sequence[Any], ack_at: float) -> list[dict[str, Any]]:
    out = []
    for r in sorted(records, key=lambda r: r.time):
        details = r.details or {}
        detail = details.get("error") or details.get("tls")
        out.append({"at_s": _rel(r.time, ack_at), "protocol": r.protocol, "method": r.method,
                    "url": r.url, "host": r.host, "outcome": str(r.outcome),
                    **({"sni": details["sni"]} if details.get("sni") else {}),
                    **({"detail": detail} if detail else {})})
    return out


def _summarised(condition: dict[str, Any], requests: list[dict[str, Any]]) -> dict[str, Any]:
    attempts: dict[str, list[float]] = {}
    for q in requests:
        if q["method"] != "TLS":
            attempts.setdefault(q["url"] or f"{q['protocol']}:{q['host']}", []).append(q["at_s"])
    return {
        **condition,
        "requests": requests,
        "attempts": {k: {"count": len(ts), "first_at_s": ts[0],
                         "retry_after_s": [round(b - a, 3) for a, b in itertools.pairwise(ts)]}
                     for k, ts in attempts.items()},
        "handshakes": [{"at_s": q["at_s"], "sni": q.get("sni"),
                        "outcome": "completed" if q["outcome"] == "served" else "failed",
                        "detail": q.get("detail")}
                       for q in requests if q["method"] == "TLS"],
    }


def aftermath(condition: LabCondition, records: Sequence[Any], ack_at: float
              ) -> dict[str, Any]:
    """What the phone did under the condition: each request (seconds after the ACK), per
    URL or DNS name how often it was asked for and the gaps between the attempts, and the
    TLS handshakes with their outcome."""
    return _summarised({"condition": condition.describe(), "kind": condition.kind,
                        "name": condition.name}, _requests(records, ack_at))


def _summary(after: dict[str, Any]) -> str:
    parts = []
    for key, a in after["attempts"].items():
        retries = a["retry_after_s"]
        parts.append(f"{key} x{a['count']} from {a['first_at_s']} s"
                     + (f" (again after {', '.join(f'{g} s' for g in retries)})"
                        if retries else ""))
    return "; ".join(parts) or "no request after the fault"


def conclude(case: ConditionCase, judgement: Judgement, records: Sequence[Any],
             ack_at: float, interp: Any) -> tuple[Judgement, dict[str, Any]]:
    """The case's judgement under its condition, and its aftermath for the record.

    The core's assertions become observations (the condition, not the manual, decides
    what the phone can get); an HTTPS-refusal case adds its judged assertion."""
    assert case.condition is not None
    condition = case.condition
    after = aftermath(condition, records, ack_at)
    observed = tuple({**a, "judged": False} for a in judgement.assertions)
    core = "matches the core" if judgement.matches else "differs from the core"
    if not case.judged:
        return replace(judgement, verdict=Verdict.OBSERVED, assertions=observed,
                       reason=f"observed under '{condition.describe()}' ({core}): "
                              f"{_summary(after)}"), after
    name = (condition.name or "").lower().rstrip(".")
    mine = [r for r in records if r.protocol == "https"
            and (r.host or "").lower().rstrip(".") == name]
    completed = _completed(records, name)
    tried = [r for r in mine if r.method == "TLS"]
    # A refusal is a handshake the phone ended over the refused certificate: one where the
    # lab presented it (a phone that sends no SNI gets the lab's default certificate, so
    # the refused one was never tested), not one the lab's own side timed out.
    shown = [r for r in tried if (r.details or {}).get("refused_certificate")]
    refused = [r for r in shown if r.outcome == Outcome.ERROR
               and not (r.details or {}).get("lab_timed_out")]
    ground = GROUNDS[HTTPS_REFUSAL]
    judged = ground.kind in judged_kinds(interp)
    holds = not completed
    detail = (f"completed {', '.join(sorted({str(r.url) for r in completed}))}" if completed
              else f"{len(tried)} handshake(s), none completed a request")
    if not tried and not completed:
        verdict, reason = Verdict.OBSERVED, f"the phone made no HTTPS connection to {name}"
    elif not completed and not shown:
        verdict, reason = Verdict.OBSERVED, (
            f"the refused certificate was never presented: {detail}, without SNI {name} "
            f"(the lab's default certificate was shown instead)")
    elif not completed and not refused:
        verdict, reason = Verdict.OBSERVED, (
            f"no handshake over the refused certificate was ended by the phone: {detail} "
            f"(timed out on the lab's side)")
    elif not judged:
        verdict, reason = Verdict.OBSERVED, f"observed, not judged: {detail}"
    elif holds:
        verdict, reason = Verdict.PASSED, f"refused: {detail}"
    else:
        verdict, reason = Verdict.FAILED, (f"the phone accepted a certificate it must "
                                           f"refuse ({condition.kind}): {detail}")
    # judged only when the phone was put to the test and the profile judges its ground: an
    # untested refusal must not count as a passed assertion (records.by_ground)
    assertion = {"id": HTTPS_REFUSAL, "what": "no file request over a refused certificate",
                 "expected": f"no request completes: {condition.describe()}",
                 "judged": verdict in (Verdict.PASSED, Verdict.FAILED),
                 "ground": ground.to_dict(), "holds": holds, "detail": detail}
    return replace(judgement, verdict=verdict, reason=reason,
                   assertions=(*observed, assertion)), after


def _completed(records: Sequence[Any], name: str) -> list[Any]:
    """File requests that completed over HTTPS to ``name`` (a refused certificate)."""
    return [r for r in records if r.protocol == "https" and is_file_request(r)
            and (r.host or "").lower().rstrip(".") == name]


def amend_late_condition(entry: CaseResult, late: Sequence[Any]) -> CaseResult:
    """A lab-condition case amended by the requests the phone made after its verdict
    (retries after the fault, say): they join its aftermath and its late requests; an
    HTTPS-refusal case fails when one of them completed over the refused certificate."""
    assert entry.aftermath is not None
    ack = (entry.ack_at or [entry.start])[0]
    condition = {k: v for k, v in entry.aftermath.items()
                 if k not in ("requests", "attempts", "handshakes")}
    after = _summarised(condition, [*entry.aftermath["requests"], *_requests(late, ack)])
    files, dns = observed(late)
    late_seen = [ObservedRequest.from_json(d, where=f"case {entry.id}")
                 for d in offset_dicts(files + dns, entry.start)]
    update: dict[str, Any] = {"aftermath": after, "late": late_seen, "observed": sorted(
        [*entry.observed, *late_seen], key=lambda o: o.time)}
    name = (condition.get("name") or "").lower().rstrip(".")
    # After its verdict the case's condition may be gone (the good certificate is back
    # once no lane holds the name): a late request that completed is a breach only when
    # the refused certificate was presented and its handshake completed.
    accepted = any(r.method == "TLS" and (r.details or {}).get("tls") == "handshake completed"
                   and (r.host or "").lower().rstrip(".") == name for r in late)
    breach = _completed(late, name) if condition.get("kind") in TLS_KINDS and accepted \
        else []
    if breach and entry.verdict == Verdict.PASSED.value:
        urls = ", ".join(sorted({str(r.url) for r in breach}))
        update["verdict"] = Verdict.FAILED.value
        update["reason"] = (f"the phone accepted a certificate it must refuse "
                            f"({condition['kind']}), late: completed {urls}")
        update["assertions"] = [
            a.model_copy(update={"holds": False, "detail": f"completed {urls} (late)"})
            if a.id == HTTPS_REFUSAL else a for a in entry.assertions or []]
    elif late_seen:
        update["reason"] = (f"{entry.reason}; with the requests after the verdict: "
                            f"{_summary(after)}")
    return entry.amended(**update)


def _cfg(tag: str) -> str:
    return f"<MODEL>_<MAC>_{tag}.cfg"


def _f(id: str, title: str, options: dict[int, str], condition: LabCondition) -> ConditionCase:
    return ConditionCase(id=id, group="failure-paths" if condition.kind not in TLS_KINDS
                         else "https-refusal", title=title,
                         source=("issue 16: failure paths (observed)"
                                 if condition.kind not in TLS_KINDS else
                                 "RFC 2818 3.1 / RFC 6125 6 (security baseline)"),
                         options=options, condition=condition)


FAILURE_PATHS: list[ConditionCase] = [
    _f("fail/http-config-404", "HTTP configuration file missing (404)",
       {160: "http://{ip}/;" + _cfg("missing")}, LabCondition("config-missing")),
    _f("fail/tftp-config-not-found", "TFTP configuration file missing (error 1)",
       {160: "tftp://{ip}/;" + _cfg("missing")}, LabCondition("config-missing")),
    _f("fail/http-firmware-missing", "HTTP firmware file missing, configuration present",
       {160: "http://{ip}/<MODEL>_<MAC>_gone.img;" + _cfg("present")},
       LabCondition("firmware-missing")),
    _f("fail/dns-nxdomain", "the provisioning host name does not resolve (NXDOMAIN)",
       {160: "http://Gone.Lab.Example/;" + _cfg("nx")}, LabCondition("nxdomain",
                                                                     "Gone.Lab.Example")),
    _f("fail/http-cut", "HTTP configuration transfer closed mid-way",
       {160: "http://{ip}/;" + _cfg("cut")}, LabCondition("cut")),
    _f("fail/http-silent", "HTTP server takes the configuration request, never answers",
       {160: "http://{ip}/;" + _cfg("silent")}, LabCondition("silent")),
    _f("fail/tftp-silent", "TFTP server ignores the configuration RRQ (and its retries)",
       {160: "tftp://{ip}/;" + _cfg("silent")}, LabCondition("silent")),
    _f("fail/tftp-cut", "TFTP configuration transfer stopped mid-way (error packet)",
       {160: "tftp://{ip}/;" + _cfg("cut")}, LabCondition("cut")),
    # Precedence under faults (issue 16 item 4): the higher source's server does not
    # answer, or its file is missing, while 66/67 offers another: does the phone go on
    # to 66/67, retry 160, or stop? Observed: no sentence of the manual says.
    _f("fail/160-silent-with-66-67", "Option 160's server never answers; 66/67 also given",
       {160: "http://{ip}/;" + _cfg("silent160"), 66: "{ip}", 67: "fw66.img;cfg66.cfg"},
       LabCondition("silent")),
    _f("fail/160-config-missing-with-66-67",
       "Option 160's configuration file is missing; 66/67 also given",
       {160: "http://{ip}/;" + _cfg("missing160"), 66: "{ip}", 67: "fw66.img;cfg66.cfg"},
       LabCondition("config-missing")),
]

HTTPS_REFUSAL_CASES: list[ConditionCase] = [
    _f(f"https-refusal/{kind}", title, {160: f"https://{name}/;" + _cfg(kind)},
       LabCondition(kind, name))  # type: ignore[arg-type]
    for kind, name, title in (
        ("untrusted-ca", "Untrusted.Lab.Example", "HTTPS certificate from an untrusted CA"),
        ("expired", "Expired.Lab.Example", "HTTPS certificate expired"),
        ("wrong-name", "Wrong-Name.Lab.Example", "HTTPS certificate for another name"))
]

CONDITION_CASES: list[ConditionCase] = FAILURE_PATHS + HTTPS_REFUSAL_CASES
assert len({c.id for c in CONDITION_CASES}) == len(CONDITION_CASES), "ids must be unique"
