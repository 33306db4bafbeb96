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
        assert refusal.ground.kind == "field"
