"""Exploration on the simulated rig: real DHCP, real provisioning requests, real phones.

Default run: ``hil explore`` itself on a 4-phone sim (a faithful control and three
deviant phones, one deviation each): the findings file names each deviation's phone
with a minimal, confirmed input and nothing for the control beyond the known gaps.
Slow runs: 500 generated cases on faithful phones find nothing beyond the known gaps;
every catalogue deviation is found on the wire and shrunk no larger than its table row.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from framework.explore.engine import ExploreConfig, Explorer, GroupResult
from framework.explore.grammar import case_size, make_case
from framework.explore.infer import profile_document
from framework.explore.oracle import LaneOracle
from framework.netns import have_privileges
from framework.runner.catalogue import ALL_CASES
from framework.runner.options import ROOT, RunOptions
from framework.runner.session import LabSession
from framework.sim.rigfile import write_sim_rig
from tests.explore.conftest import (
    CASES_PER_PHONE,
    HIL_EXPLORE_DEVIATIONS,
    HIL_EXPLORE_SEED,
    SIM_PROFILE,
    WIRE_RIGS,
    WIRE_SEEDS,
    known_gap,
    planned,
)

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")]


def _prefix(tag: str) -> str:
    return f"hilt-x{tag}{os.getpid() % 1000}"


def _sim_profile_file(tmp: Path) -> Path:
    path = tmp / "sim-profile.json"
    path.write_text(json.dumps(profile_document(SIM_PROFILE, SIM_PROFILE)))
    return path


def _caused(group: dict[str, Any], deviation: str) -> list[dict[str, Any]]:
    """Findings whose minimal input the deviant firmware handles otherwise than the
    faithful one (the finding is the deviation, not a known gap)."""
    out = []
    for f in group["findings"]:
        case = make_case({int(k): v for k, v in f["minimal"]["options"].items()
                          if not v.startswith("hex:")}, f["minimal"]["url_option"])
        if any(v.startswith("hex:") for v in f["minimal"]["options"].values()):
            out.append(f)  # binary values: trust the wire, checked by reproduction
        elif planned({deviation}, case) != planned(set(), case):
            out.append(f)
    return out


@pytest.mark.timeout(400)
def test_hil_explore_finds_each_deviant_phone_and_not_the_control(tmp_path: Path) -> None:
    deviations = {f"ph{i + 2}": [d] for i, d in enumerate(HIL_EXPLORE_DEVIATIONS)}
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix=_prefix("c"), phones=4,
                        deviations=deviations, boot_time_s=0.2)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "framework.cli", "explore", "--rig", str(rig), "--budget", "120",
         "--seed", str(HIL_EXPLORE_SEED), "--settle", "0.3", "--request-timeout", "1.5", "--shrink-budget", "20",
         "--confirm", "2", "--no-extra-names", "--profile", str(_sim_profile_file(tmp_path)),
         "--reports", str(tmp_path / "reports"), "--run-id", "x"],
        capture_output=True, text=True, cwd=ROOT, timeout=380)
    elapsed = time.monotonic() - started
    assert proc.returncode == 1, proc.stderr[-2000:]           # there are findings
    assert "[explore] cases" in proc.stderr and "phone runs" in proc.stderr
    assert "Traceback" not in proc.stderr
    out = tmp_path / "reports" / "x" / "explore"
    doc = json.loads((out / "findings.json").read_text())
    assert doc["explore"]["generated"] == 120
    groups = {g["phones"][0]: g for g in doc["groups"]}
    assert all(known_gap(f["minimal"]["options"]) for f in groups["ph1"]["findings"]), \
        groups["ph1"]["findings"]
    for phone, (deviation,) in deviations.items():
        caused = _caused(groups[phone], deviation)
        assert caused, f"{deviation} on {phone} not found: {groups[phone]['findings']}"
        assert all(f["reproduced"] == 2 for f in caused)
    order = next(f for f in groups["ph3"]["findings"] if f["about"] == "order")
    assert order["observed"]["requests"][0].endswith(".cfg")
    report = (out / "findings.md").read_text()
    assert "x 405HD (phones ph2" in report and "MAC case" in report
    assert (out / "profiles").is_dir() and len(list((out / "profiles").iterdir())) == 4
    page = (tmp_path / "reports" / "x" / "certification.html").read_text()
    assert 'id="explore"' in page and "x 405HD" not in page and "× 405HD" in page
    print(f"hil explore, 4 phones, 120 cases: {elapsed:.0f} s, "
          f"{doc['explore']['phone_runs']} phone runs")


def _explore_on_rig(tmp: Path, prefix: str, deviations: dict[str, list[str]], phones: int,
                    config: ExploreConfig) -> tuple[list[GroupResult], Explorer]:
    rig = write_sim_rig(tmp / f"{prefix}.yaml", prefix=prefix, phones=phones,
                        deviations=deviations, boot_time_s=0.2)
    opts = RunOptions(rig_path=rig, reports_dir=tmp / "reports", settle_s=0.3, capture=False,
                      boot_timeout_s=20, request_timeout_s=1.5)
    with LabSession(opts) as session:
        broken = {n: lane.broken for n, lane in session.lanes.items() if lane.broken}
        assert not broken, broken
        for lane in session.lanes.values():
            lane.profile = SIM_PROFILE
        oracles = [LaneOracle(session, n) for n in session.lanes]
        explorer = Explorer(oracles, {o.name: SIM_PROFILE for o in oracles}, config)
        return explorer.run(), explorer


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_500_generated_cases_on_faithful_phones_find_nothing_new(tmp_path: Path) -> None:
    started = time.monotonic()
    groups, explorer = _explore_on_rig(
        tmp_path, _prefix("f"), {}, 4,
        ExploreConfig(seed=11, budget=500, shrink_budget=20, confirm=2, extra_names=False))
    assert explorer.progress.generated == 500
    assert sum(len(g.trials) for g in groups) == 500
    assert not [t for g in groups for t in g.trials if t.broken]
    assert all(known_gap(f.minimal.options) for g in groups for f in g.findings), [
        f.to_dict()["minimal_template"] for g in groups for f in g.findings]
    print(f"500 faithful cases on 4 phones: {time.monotonic() - started:.0f} s, "
          f"{explorer.progress.phone_runs} phone runs")


@pytest.mark.slow
@pytest.mark.timeout(1500)
@pytest.mark.parametrize("seed", WIRE_SEEDS)
@pytest.mark.parametrize("group", WIRE_RIGS,
                         ids=[f"deviations-{i}" for i in range(len(WIRE_RIGS))])
def test_every_deviation_is_found_on_the_wire(tmp_path: Path, group: list[str],
                                              seed: int) -> None:
    """The documented budget (framework/explore/README.md): 100 generated cases a phone,
    shrink budget 40, 2 confirmations; test_budget.py proves off the wire that each
    phone's share of the seed's cases holds an input that exposes its deviation."""
    started = time.monotonic()
    deviations = {f"ph{i + 1}": [d] for i, d in enumerate(group)}
    groups, explorer = _explore_on_rig(
        tmp_path, _prefix(f"d{WIRE_RIGS.index(group)}"), deviations, len(group),
        ExploreConfig(seed=seed, budget=CASES_PER_PHONE * len(group), shrink_budget=40,
                      confirm=2, extra_names=False))
    by_phone = {g.phones[0]: g for g in groups}
    missing, too_big = [], []
    for phone, (deviation,) in deviations.items():
        caused = [f for f in by_phone[phone].findings
                  if planned({deviation}, f.minimal, f.model, f.trial.mac)
                  != planned(set(), f.minimal, f.model, f.trial.mac) and f.reproduced == 2]
        if not caused:
            missing.append((deviation, [(f.kind, f.about, f"{f.reproduced}/{f.confirm_runs}",
                                         f.to_dict()["minimal_template"])
                                        for f in by_phone[phone].findings]))
            continue
        smallest = min(case_size(f.minimal)[:2] for f in caused)
        catching = [case_size(c)[:2] for c in ALL_CASES
                    if planned({deviation}, c) != planned(set(), c)]
        if smallest > min(catching) or smallest[0] > min(catching)[0]:
            too_big.append((deviation, smallest, min(catching)))
    assert not missing, f"not found on the wire: {missing}"
    assert not too_big, too_big
    print(f"deviations {group}: {time.monotonic() - started:.0f} s, "
          f"{explorer.progress.phone_runs} phone runs")
