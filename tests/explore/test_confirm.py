"""Reported only when reproduced: flaky disagreements apart, with each attempt's evidence;
a trial never judges requests from before its own cycle; cases dealt deterministically."""

from __future__ import annotations

import dataclasses
from typing import Any

from framework.explore.assess import Trial
from framework.explore.engine import ExploreConfig, Explorer, GroupResult
from framework.explore.findings import document, markdown
from framework.explore.grammar import generate_cases
from framework.explore.oracle import PlannerOracle
from framework.explore.shrink import candidates
from framework.records import ObservedRequest
from framework.report.html import explore_section
from framework.runner.catalogue import Case
from framework.runner.verdict import Observed
from tests.explore.conftest import SIM_PROFILE
from tests.records.samples import case as result
from tests.records.samples import request

LEAK = "tftp://192.0.2.1/leaked-from-an-earlier-input.cfg"


class LeakyPhone(PlannerOracle):
    """The faithful sim, plus an extra request on the runs ``leaks`` picks (a request of an
    earlier input that the runner attributed to this one)."""

    def __init__(self, leaks: Any, **kwargs: Any) -> None:
        super().__init__((), **kwargs)
        self.leaks = leaks

    def run(self, case: Case) -> Trial:
        trial = super().run(case)
        if not self.leaks(self.calls, case):
            return trial
        extra = Observed(trial.files[-1].time + 0.001 if trial.files else 0.001, "tftp",
                         LEAK, "192.0.2.1")
        return dataclasses.replace(trial, files=(*trial.files, extra))


def _explore(phone: PlannerOracle, budget: int, confirm: int = 3) -> tuple[Explorer,
                                                                           GroupResult]:
    ex = Explorer([phone], {phone.name: SIM_PROFILE},
                  ExploreConfig(seed=2, budget=budget, confirm=confirm, extra_names=False))
    (group,) = ex.run()
    return ex, group


def _extra(fs: list[Any]) -> list[Any]:
    return [f for f in fs if "extra-request" in f.about]


def test_a_disagreement_that_does_not_reproduce_is_flaky_not_a_finding() -> None:
    _, group = _explore(LeakyPhone(lambda n, c: n == 4, name="ph"), 10)
    assert not _extra(group.findings)
    (flaky,) = _extra(group.flaky)
    assert (flaky.reproduced, flaky.confirm_runs) == (0, 3) and not flaky.confirmed
    assert len(flaky.attempts) == 3 and not any(a.shows for a in flaky.attempts)
    assert all(LEAK not in a.trial.requested for a in flaky.attempts)
    d = flaky.to_dict()
    assert d["reproductions"] == "0/3" and len(d["attempts"]) == 3
    assert all("requests" in a and not a["shows"] for a in d["attempts"])


def test_sometimes_is_flaky_too_and_every_attempt_is_evidence() -> None:
    target: list[str] = []

    def leaks(n: int, case: Case) -> bool:  # every second run of the first input
        if not target:
            target.append(case.id)
        return case.id == target[0] and n % 2 == 1

    ex, group = _explore(LeakyPhone(leaks, name="ph"), 6, confirm=4)
    (flaky,) = _extra(group.flaky)
    assert 0 < flaky.reproduced < flaky.confirm_runs == 4
    assert [a.shows for a in flaky.attempts].count(True) == flaky.reproduced
    assert not _extra(group.findings)
    doc = document([group], ex.config, ex.progress, {"rig": "planner"})
    text = markdown(doc)
    assert "### Flaky (not reproduced in every re-run; not findings)" in text
    assert f"reproduced {flaky.reproduced}/4" in text and LEAK in text
    assert "attempt 4:" in text
    page = explore_section(doc)
    assert "Flaky (not reproduced in every re-run" in page and LEAK in page
    assert "1 flaky" in page
    assert doc["groups"][0]["flaky"][0]["attempts"][0]["requests"]


def test_a_reproduced_finding_says_so_and_a_misled_shrink_reports_the_original() -> None:
    """The first input always shows an extra request (a deviation); one leaked request
    makes the shrinker take a step to an input that does not: the shrunk input fails its
    confirmation, the original is confirmed and reported, unshrunk, with a note."""
    target: list[Case] = []
    leaked: list[str] = []

    def leaks(n: int, case: Case) -> bool:
        if not target:
            target.append(case)
        if case.id == target[0].id:
            return True
        if not leaked and case.id in {c.id for c in candidates(target[0])}:
            leaked.append(case.id)
            return True
        return False

    _, group = _explore(LeakyPhone(leaks, name="ph"), 3, confirm=2)
    (finding,) = _extra(group.findings)
    assert leaked and finding.minimal.id == target[0].id
    assert (finding.reproduced, finding.confirm_runs) == (2, 2) and finding.confirmed
    assert finding.shrink_steps == 0 and "reported unshrunk" in finding.note
    assert finding.to_dict()["reproductions"] == "2/2"
    assert LEAK in finding.trial.requested


def test_a_trial_never_judges_requests_from_before_its_own_cycle() -> None:
    case = generate_cases(1, 1)[0]
    entry = result(case.id, "ph1", "failed", reason="x", start=100.0, ack_at=[101.5],
                   observed=[request(99.0, "tftp://192.0.2.1/old.cfg"),
                             ObservedRequest(time=100.7, protocol="dns", url=None,
                                             host="old.example", outcome="answered",
                                             detail="A"),
                             request(101.6, "tftp://192.0.2.1/440HD.img")])
    trial = Trial.from_entry(case, entry, "192.0.2.1")
    assert trial.requested == ["tftp://192.0.2.1/440HD.img"] and trial.dns == ()
    assert [o.url or o.host for o in trial.excluded] == ["tftp://192.0.2.1/old.cfg",
                                                         "old.example"]
    no_ack = Trial.from_entry(case, entry.amended(ack_at=[]), "192.0.2.1")
    assert [o.host for o in no_ack.dns] == ["old.example"] and len(no_ack.excluded) == 1


def test_each_group_gets_the_same_share_of_the_seeds_cases_whoever_is_faster() -> None:
    phones = [PlannerOracle((), name="a", model="440HD"),
              PlannerOracle((), name="b", model="405HD"),
              PlannerOracle((), name="c", model="440HD")]
    ex = Explorer(phones, {p.name: SIM_PROFILE for p in phones},
                  ExploreConfig(seed=8, budget=30, extra_names=False))
    ex.explore()
    cases = generate_cases(8, 30, extra_names=False)
    got = {m: sorted(t.case.id for t in ex.trials if t.model == m) for m in ("440HD", "405HD")}
    assert got["440HD"] == sorted(c.id for c in cases[0::2])   # phones a and c share
    assert got["405HD"] == sorted(c.id for c in cases[1::2])
