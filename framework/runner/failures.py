"""Failure paths and HTTPS refusal (issue 16 items 5 and 6): cases that need a lab
condition, applied on the lab's own servers for one case only and removed after it.

A :class:`LabCondition` acts on the real wire: a configuration or firmware file the
content store answers not-found for (HTTP 404, TFTP error 1, FTP 550), a transfer cut
mid-way, a host name the lab DNS answers NXDOMAIN for, or a server certificate a TLS
client must refuse (framework.services.badcerts), presented for one SNI name only. Every
condition is keyed by something only its case uses (the phone's MAC in a file name, a
host name of its own), so lanes running at the same time never see each other's.

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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal
from urllib.parse import urlsplit

from framework.resolution import ExpectedProvisioning
from framework.resolution.grounds import GROUNDS, judged_kinds
from framework.runner.catalogue import Case
from framework.runner.cycle import is_file_request
from framework.runner.verdict import Judgement, Verdict
from framework.services.badcerts import refused_context

ConditionKind = Literal["config-missing", "firmware-missing", "cut", "nxdomain",
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


@contextlib.contextmanager
def applied(condition: LabCondition, services: Any, expected: ExpectedProvisioning,
            lab_ip: str) -> Iterator[None]:
    """``condition`` on ``services`` (framework.services.ProvisioningServices) for the
    duration of the block; what it changed is put back after."""
    content, zone = services.content, services.zone
    undo: list[Any] = []
    try:
        if condition.kind in ("config-missing", "firmware-missing", "cut"):
            purpose = "firmware" if condition.kind == "firmware-missing" else "configuration"
            for path in _paths(expected, purpose):
                before = content.policy_for(path)
                if condition.kind == "cut":
                    content.cut(path, condition.after, CUT_BODY)
                else:
                    content.not_found(path)
                undo.append(lambda p=path, b=before: content.set(p, b))
        elif condition.kind == "nxdomain":
            assert condition.name is not None
            zone.remove(condition.name)  # a name of its own: nothing to put back
        else:
            assert condition.name is not None
            if services.https is None:
                raise ValueError("an HTTPS-refusal case needs the lab's HTTPS server")
            services.https.present(condition.name, refused_context(
                condition.kind, condition.name, services.ca))
            undo.append(lambda: services.https.present(condition.name, None))
            zone.set(condition.name, lab_ip)
            undo.append(lambda: zone.remove(condition.name))
        yield
    finally:
        for step in reversed(undo):
            step()


def _rel(t: float, since: float) -> float:
    return round(t - since, 3)


def aftermath(condition: LabCondition, records: Sequence[Any], ack_at: float
              ) -> dict[str, Any]:
    """What the phone did under the condition: each request (seconds after the ACK),
    and per URL or name how often it was asked for and the gaps between the attempts."""
    ordered = sorted(records, key=lambda r: r.time)
    requests = [{"at_s": _rel(r.time, ack_at), "protocol": r.protocol, "method": r.method,
                 "url": r.url, "host": r.host, "outcome": str(r.outcome),
                 **({"detail": d} if (d := (r.details or {}).get("error")
                                      or (r.details or {}).get("tls")) else {})}
                for r in ordered]
    attempts: dict[str, list[float]] = {}
    for r in ordered:
        key = r.url or f"{r.protocol}:{r.host}"
        attempts.setdefault(key, []).append(r.time)
    return {
        "condition": condition.describe(),
        "requests": requests,
        "attempts": {k: {"count": len(ts), "first_at_s": _rel(ts[0], ack_at),
                         "retry_after_s": [round(b - a, 3) for a, b in itertools.pairwise(ts)]}
                     for k, ts in attempts.items()},
        "handshakes": [{"at_s": _rel(r.time, ack_at), "sni": (r.details or {}).get("sni"),
                        "outcome": "completed" if str(r.outcome) == "served" else "failed",
                        "detail": (r.details or {}).get("error")
                        or (r.details or {}).get("tls")}
                       for r in ordered if r.method == "TLS"],
    }


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
    completed = [r for r in mine if is_file_request(r)]
    tried = [r for r in mine if r.method == "TLS"]
    ground = GROUNDS[HTTPS_REFUSAL]
    judged = ground.kind in judged_kinds(interp)
    holds = not completed
    detail = (f"completed {', '.join(sorted({str(r.url) for r in completed}))}" if completed
              else f"{len(tried)} handshake(s), none completed a request")
    assertion = {"id": HTTPS_REFUSAL, "what": "no file request over a refused certificate",
                 "expected": f"no request completes: {condition.describe()}",
                 "judged": judged, "ground": ground.to_dict(), "holds": holds,
                 "detail": detail}
    if not tried and not completed:
        verdict, reason = Verdict.OBSERVED, f"the phone made no HTTPS connection to {name}"
    elif not judged:
        verdict, reason = Verdict.OBSERVED, f"observed, not judged: {detail}"
    elif holds:
        verdict, reason = Verdict.PASSED, f"refused: {detail}"
    else:
        verdict, reason = Verdict.FAILED, (f"the phone accepted a certificate it must "
                                           f"refuse ({condition.kind}): {detail}")
    return replace(judgement, verdict=verdict, reason=reason,
                   assertions=(*observed, assertion)), after


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
    _f("fail/tftp-cut", "TFTP configuration transfer stopped mid-way (error packet)",
       {160: "tftp://{ip}/;" + _cfg("cut")}, LabCondition("cut")),
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
