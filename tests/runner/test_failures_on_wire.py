"""The failure-path and HTTPS-refusal cases on the simulated rig: a faithful phone gets
every failure path observed (with the requests after the fault and their timings) and
passes every HTTPS refusal; a phone with ``trusts-any-certificate`` fails exactly the
HTTPS refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from framework.netns import have_privileges
from framework.runner.failures import CONDITION_CASES, FAILURE_PATHS, HTTPS_REFUSAL_CASES
from tests.e2e.test_can_fail import run_lab

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")]


@pytest.mark.timeout(600)
def test_failure_paths_observed_and_https_refusal_judged(tmp_path: Path) -> None:
    results = run_lab(tmp_path, f"hgf{os.getpid() % 1000}", 2,
                      {"ph2": ["trusts-any-certificate"]}, list(CONDITION_CASES))
    for (cid, phone), r in sorted(results.items()):
        print(cid, phone, r.verdict, r.reason)
    for case in FAILURE_PATHS:
        for phone in ("ph1", "ph2"):
            r = results[(case.id, phone)]
            assert r.verdict == "observed", (case.id, phone, r.verdict, r.reason)
            assert r.aftermath is not None and r.aftermath["requests"], (case.id, phone)
            assert all(a["count"] >= 1 and a["first_at_s"] >= 0
                       for a in r.aftermath["attempts"].values())
            assert all(not a.judged for a in r.assertions or []
                       if not a.id.startswith("identification"))
    nx = results[("fail/dns-nxdomain", "ph1")].aftermath
    assert nx is not None and any(q["protocol"] == "dns" and q["outcome"] == "not-found"
                                  for q in nx["requests"])
    for case in HTTPS_REFUSAL_CASES:
        good, bad = results[(case.id, "ph1")], results[(case.id, "ph2")]
        assert good.verdict == "passed", (case.id, good.reason)
        assert bad.verdict == "failed", (case.id, bad.reason)
        assert good.aftermath is not None and bad.aftermath is not None
        assert [h["outcome"] for h in good.aftermath["handshakes"]][:1] == ["failed"]
        assert "completed" in [h["outcome"] for h in bad.aftermath["handshakes"]]
        (refusal,) = [a for a in bad.assertions or [] if a.id == "security/https-refusal"]
        assert refusal.judged and not refusal.holds
        assert refusal.ground.kind == "manual"  # RFC 2818 3.1, quoted with its section


def test_a_shared_tls_name_stays_refused_until_the_last_lane_lets_go(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every phone's lane runs the same HTTPS-refusal case against the same host name: the
    first lane to finish must not put the good certificate back under the others (a
    faithful phone then completed a request and 'accepted' a certificate it refused)."""
    from framework.resolution import PhoneIdentity, get_profile, resolve
    from framework.runner import failures
    from framework.runner.failures import applied

    monkeypatch.setattr(failures, "refused_context", lambda kind, name, ca: (kind, name))

    class Https:
        def __init__(self) -> None:
            self.presented: dict[str, object] = {}

        def present(self, name: str, context: object) -> None:
            if context is None:
                self.presented.pop(name, None)
            else:
                self.presented[name] = context

    class Zone:
        def __init__(self) -> None:
            self.names: dict[str, str] = {}

        def set(self, name: str, ip: str) -> None:
            self.names[name] = ip

        def remove(self, name: str) -> None:
            self.names.pop(name, None)

    class Services:
        https, zone, content, ca = Https(), Zone(), None, None

    case = HTTPS_REFUSAL_CASES[1]
    assert case.condition is not None
    name = case.condition.name
    expected = resolve(case.render("192.0.2.1"), PhoneIdentity("440HD", "00908F000001"),
                       get_profile("2.2"))
    services = Services()
    with applied(case.condition, services, expected, "192.0.2.1"):
        with applied(case.condition, services, expected, "192.0.2.1"):
            assert name in services.https.presented and name in services.zone.names
        assert name in services.https.presented and name in services.zone.names
    assert name not in services.https.presented and name not in services.zone.names


def test_a_late_request_is_a_breach_only_over_the_refused_certificate() -> None:
    """After its verdict an HTTPS-refusal case's condition may be gone (the good
    certificate is back): a late request completing then is no breach; one whose handshake
    completed with the refused certificate presented is."""
    from framework.records import CaseResult
    from framework.runner.failures import amend_late_condition
    from framework.services.log import RequestRecord

    name = "untrusted.lab.example"
    entry = CaseResult.from_json({
        "id": "https-refusal/untrusted-ca", "group": "https-refusal", "title": "t",
        "manual": "RFC 2818", "phone": "ph1", "model": "440HD", "mac": "00908F000001",
        "firmware": None, "profile": "2.2", "url_option": 160, "options": {},
        "expected": None, "observed": [], "verdict": "passed", "reason": "refused",
        "start": 100.0, "end": 101.0, "evidence": [], "ack_at": [100.1],
        "aftermath": {"kind": "untrusted-ca", "name": "Untrusted.Lab.Example",
                      "condition": "c", "requests": [], "attempts": {}, "handshakes": []}})

    def get(t: float) -> RequestRecord:
        return RequestRecord(time=t, protocol="https", client_ip="192.0.2.11", host=name,
                             path="/a.cfg", url=f"https://{name}/a.cfg", method="GET",
                             outcome="served")

    handshake = RequestRecord(time=102.9, protocol="https", client_ip="192.0.2.11", host=name,
                              path="", url=None, method="TLS", outcome="served",
                              details={"tls": "handshake completed", "sni": name})
    assert amend_late_condition(entry, [get(103.0)]).verdict == "passed"
    assert amend_late_condition(entry, [handshake, get(103.0)]).verdict == "failed"
