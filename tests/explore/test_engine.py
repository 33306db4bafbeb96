"""Exploration against the sim firmware's planner as a stand-in phone (no network).

The proofs of issue 10, fast: the faithful firmware yields nothing beyond the known
core/sim gaps in 500 generated cases; every catalogue deviation is found within a budget
of 150 cases, the minimal input is caused by the deviation (the faithful firmware does
otherwise on it), it reproduces, and it is no larger than the smallest catalogue case
(table row) that exposes the deviation.
"""

from __future__ import annotations

import json

import pytest

from framework.explore.engine import ExploreConfig, Explorer, GroupResult
from framework.explore.findings import document, markdown, write
from framework.explore.grammar import case_size
from framework.explore.oracle import PlannerOracle
from framework.resolution import Profile
from framework.runner.catalogue import ALL_CASES
from tests.explore.conftest import (
    EXPLORED_DEVIATIONS,
    SIM_PROFILE,
    base_profile,
    known_gap,
    planned,
)


def explore(deviations: list[str], profile: Profile, budget: int, seed: int = 3,
            extra_names: bool = False) -> tuple[Explorer, GroupResult]:
    oracle = PlannerOracle(deviations, name="ph")
    ex = Explorer([oracle], {"ph": profile},
                  ExploreConfig(seed=seed, budget=budget, extra_names=extra_names))
    (group,) = ex.run()
    return ex, group


def test_faithful_firmware_500_cases_nothing_but_known_gaps() -> None:
    ex, group = explore([], SIM_PROFILE, 500, seed=11)
    assert ex.progress.generated == 500
    assert all(known_gap(f.minimal.options) for f in group.findings), [
        f.to_dict()["minimal_template"] for f in group.findings]
    assert not any(r.changed for r in group.behaviour)


def test_under_the_manual_profile_the_sim_choices_are_inferred() -> None:
    """Under 2.2 the faithful sim's choices where the manual is silent show as switch
    findings, and the inferred profile is the sim profile the other tests use."""
    _, group = explore([], base_profile(), 300, seed=11)
    changed = {r.switch: r.inferred_value for r in group.behaviour if r.changed}
    # option43_format is auto by default (issue 16 item 3), as the faithful sim reads it
    assert changed == {"url_option_bare_host": "no-url", "option67_single_name": "firmware"}
    assert {f.about for f in group.findings if f.kind == "switch"} >= {
        "url_option_bare_host=no-url", "option67_single_name=firmware"}
    assert not [f for f in group.findings if f.kind == "failure"]


def _catalogue_size(deviation: str) -> tuple[int, int]:
    catching = [c for c in ALL_CASES if planned({deviation}, c) != planned(set(), c)]
    return min((case_size(c)[0], case_size(c)[1]) for c in catching)


@pytest.mark.parametrize("deviation", EXPLORED_DEVIATIONS)
def test_each_deviation_is_found_shrunk_and_confirmed(deviation: str) -> None:
    _, group = explore([deviation], SIM_PROFILE, 150)
    caused = [f for f in group.findings
              if planned({deviation}, f.minimal) != planned(set(), f.minimal)]
    assert caused, f"{deviation}: nothing found ({[f.about for f in group.findings]})"
    assert all(f.reproduced == f.confirm_runs == 3 for f in caused)
    smallest = min(caused, key=lambda f: case_size(f.minimal))
    options, nbytes, _ = case_size(smallest.minimal)
    row_options, row_bytes = _catalogue_size(deviation)
    assert (options, nbytes) <= (row_options, row_bytes) and options <= row_options, (
        f"{deviation}: minimal {dict(smallest.minimal.options)} is {options} options / "
        f"{nbytes} bytes; the smallest catalogue case needs {row_options} / {row_bytes}")


def test_inferred_profile_is_saved_and_loads_and_then_agrees(tmp_path) -> None:
    ex, group = explore(["mac-case-flipped", "host-case-kept"], SIM_PROFILE, 120)
    rows = {r.switch: r for r in group.behaviour if r.changed}
    assert rows["mac_case"].inferred_value == "lower"
    assert rows["host_case"].inferred_value == "as-given"
    assert rows["mac_case"].for_inferred > rows["mac_case"].for_profile
    doc = document([group], ex.config, ex.progress, {"rig": "planner"})
    paths = write(tmp_path, doc)
    saved = json.loads(paths["profile unknown 440HD"].read_text()
                       if "profile unknown 440HD" in paths else
                       next(p for k, p in paths.items() if k.startswith("profile")).read_text())
    loaded = Profile.from_dict(saved)
    assert loaded.interpretation.mac_case == "lower"
    assert loaded.interpretation.host_case == "as-given"
    # The next regression run with the saved profile: those behaviours are no longer news.
    _, again = explore(["mac-case-flipped", "host-case-kept"], loaded, 120)
    assert not [f for f in again.findings if f.kind == "switch"
                and f.about.startswith(("mac_case", "host_case"))]
    text = markdown(doc)
    assert "| `mac_case` | upper | lower **(differs)**" in text
    assert json.loads(paths["findings"].read_text())["groups"][0]["findings"]


def test_findings_say_expected_observed_and_reproductions() -> None:
    _, group = explore(["config-before-firmware"], SIM_PROFILE, 60)
    failure = next(f for f in group.findings if f.kind == "failure")
    d = failure.to_dict()
    assert d["about"] == "order"
    assert d["expected"]["promise"] == "promised"
    assert d["observed"]["requests"][0].endswith(".cfg")
    assert d["reproduced"] == 3 and d["occurrences"] >= 1
    assert d["minimal_size"]["options"] == 1
    assert "configuration requested before firmware" in " ".join(d["differences"])


def test_budget_and_cost_are_counted() -> None:
    ex, group = explore(["mac-case-flipped"], SIM_PROFILE, 40)
    oracle = ex.oracles[0]
    assert ex.progress.generated == 40
    assert ex.progress.phone_runs == oracle.calls  # type: ignore[attr-defined]
    assert oracle.calls <= 40 + len(group.findings) * (ex.config.shrink_budget + 3)


def test_time_mode_stops_and_is_seeded() -> None:
    a = Explorer([PlannerOracle([], name="ph")], {"ph": SIM_PROFILE},
                 ExploreConfig(seed=9, budget=None, time_s=1.0, batch=20))
    trials = a.explore()
    assert trials and a.progress.budget is None
    b = Explorer([PlannerOracle([], name="ph")], {"ph": SIM_PROFILE},
                 ExploreConfig(seed=9, budget=None, time_s=1.0, batch=20))
    n = min(len(trials), len(b.explore()), 20)
    assert [t.case.id for t in trials[:n]] == [t.case.id for t in b.trials[:n]]
