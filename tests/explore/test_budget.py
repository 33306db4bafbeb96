"""The documented budget finds every named deviation, for every seed the wire test uses.

Deterministic and off the wire: which inputs a phone of the wire test gets depends only on
the seed, the budget and the rig (the engine deals case ``i`` to firmware x model group
``i mod G``), so the sim firmware with and without each deviation is the oracle for what
that phone could show. Then the wire test's exploration is replayed with the sim planner
as the phones (same names, models, MACs, seed, budget, shrink budget, confirmations): each
deviation is found, caused by the deviation, reproduced in every re-run, and no larger
than the smallest catalogue case that exposes it.
"""

from __future__ import annotations

from typing import Any

import pytest

from framework.explore.engine import ExploreConfig, Explorer
from framework.explore.grammar import case_size, generate_cases
from framework.explore.oracle import PlannerOracle
from framework.runner.catalogue import ALL_CASES, Case
from tests.explore.conftest import (
    CASES_PER_PHONE,
    EXPLORED_DEVIATIONS,
    HIL_EXPLORE_DEVIATIONS,
    HIL_EXPLORE_SEED,
    SIM_PROFILE,
    WIRE_RIGS,
    WIRE_SEEDS,
    planned,
    wire_phone,
)


def _separates(deviation: str, case: Case, model: str, mac: str) -> bool:
    return planned({deviation}, case, model, mac) != planned(set(), case, model, mac)


def test_the_wire_rigs_cover_every_explored_deviation() -> None:
    assert sorted(d for rig in WIRE_RIGS for d in rig) == EXPLORED_DEVIATIONS
    assert "option67-overrides-66-names" in EXPLORED_DEVIATIONS


@pytest.mark.parametrize("seed", WIRE_SEEDS)
@pytest.mark.parametrize("rig", range(len(WIRE_RIGS)), ids=lambda i: f"deviations-{i}")
def test_each_phones_share_holds_an_input_that_separates_its_deviation(seed: int,
                                                                        rig: int) -> None:
    group = WIRE_RIGS[rig]
    cases = generate_cases(seed, CASES_PER_PHONE * len(group), extra_names=False)
    missing = []
    for g, deviation in enumerate(group):
        _, model, mac = wire_phone(g + 1)
        share = cases[g::len(group)]
        assert len(share) == CASES_PER_PHONE
        if not any(_separates(deviation, c, model, mac) for c in share):
            missing.append(deviation)
    assert not missing, f"seed {seed}: no input in the budget separates {missing}"


@pytest.mark.parametrize("seed", [0, 1, 2, 4, 5, 6, 7])
def test_the_steered_grammar_separates_option67_names_for_other_seeds_too(seed: int) -> None:
    """Not tuned to one seed: 100 inputs of any seed hold several that tell whether 67's
    names replace 66's (under 2 % of inputs did before the grammar was steered)."""
    cases = generate_cases(seed, CASES_PER_PHONE, extra_names=False)
    hits = sum(_separates("option67-overrides-66-names", c, "440HD", "00908F000001")
               for c in cases)
    assert hits >= 5, hits


def _replay(deviations: list[list[str]], seed: int, budget: int, shrink_budget: int,
            confirm: int) -> tuple[list[tuple[str, list[tuple[str, str]]]], list[Any]]:
    """A wire test's exploration with the sim planner as its phones (ph1.. as in
    ``write_sim_rig``): what was not found, and what was found larger than its table row."""
    oracles = []
    for g, devs in enumerate(deviations):
        name, model, mac = wire_phone(g + 1)
        oracles.append(PlannerOracle(devs, name=name, model=model, mac=mac))
    explorer = Explorer(oracles, {o.name: SIM_PROFILE for o in oracles},
                        ExploreConfig(seed=seed, budget=budget, shrink_budget=shrink_budget,
                                      confirm=confirm, extra_names=False))
    by_phone = {g.phones[0]: g for g in explorer.run()}
    assert all(len(g.trials) == budget // len(oracles) for g in by_phone.values())
    missing, too_big = [], []
    for o, devs in zip(oracles, deviations, strict=True):
        for deviation in devs:
            findings = by_phone[o.name].findings
            caused = [f for f in findings if _separates(deviation, f.minimal, o.model, o.mac)
                      and f.reproduced == f.confirm_runs == confirm]
            if not caused:
                missing.append((deviation, [(f.kind, f.about) for f in findings]))
                continue
            smallest = min(case_size(f.minimal)[:2] for f in caused)
            row = min(case_size(c)[:2] for c in ALL_CASES
                      if _separates(deviation, c, "440HD", "00908F000001"))
            if smallest > row or smallest[0] > row[0]:
                too_big.append((deviation, smallest, row))
    return missing, too_big


@pytest.mark.parametrize("seed", WIRE_SEEDS)
@pytest.mark.parametrize("rig", range(len(WIRE_RIGS)), ids=lambda i: f"deviations-{i}")
def test_the_wire_tests_exploration_replayed_on_the_planner(seed: int, rig: int) -> None:
    group = WIRE_RIGS[rig]
    missing, too_big = _replay([[d] for d in group], seed, CASES_PER_PHONE * len(group),
                               shrink_budget=40, confirm=2)
    assert not missing, f"seed {seed}: not found: {missing}"
    assert not too_big, too_big


def test_the_hil_explore_wire_tests_exploration_replayed_on_the_planner() -> None:
    """test_wire.py's ``hil explore`` run: 4 phones, 30 cases each, seed 4."""
    missing, too_big = _replay(
        [[], *([d] for d in HIL_EXPLORE_DEVIATIONS)], HIL_EXPLORE_SEED, 120, shrink_budget=20,
        confirm=2)
    assert not missing and not too_big, (missing, too_big)
