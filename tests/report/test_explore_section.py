"""The exploration section of the HTML report: per firmware x model, each finding with its
minimal options, the core's expectation, what the phone did and how often it reproduced,
then the inferred behaviour table; `hil report html` adds it when a run explored."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from markupsafe import escape
from typer.testing import CliRunner

from framework.cli import app
from framework.explore.engine import ExploreConfig, Explorer
from framework.explore.findings import document
from framework.explore.oracle import PlannerOracle
from framework.report import html
from framework.resolution import get_profile
from tests.explore.conftest import SIM_PROFILE
from tests.records.samples import phone_meta, run_meta


def _findings(deviations: list[str], profile: Any = SIM_PROFILE) -> dict[str, Any]:
    ex = Explorer([PlannerOracle(deviations, name="ph2")], {"ph2": profile},
                  ExploreConfig(seed=3, budget=80, extra_names=False))
    groups = ex.run()
    return json.loads(json.dumps(document(groups, ex.config, ex.progress,
                                          {"rig": "sim", "run": "x"})))


def _record() -> dict[str, Any]:
    return {"run": run_meta("x", status="finished"),
            "phones": [phone_meta("ph2", mac="00908F000002", firmware="3.4.8.M4", state="ok")],
            "cases": [], "summary": {"total": 0, "passed": 0, "failed": 0, "broken": 0,
                                     "observed": 0, "skipped": 0}}


def _text(page: str) -> str:
    return re.sub(r"<[^>]+>", " ", page)


def test_each_finding_and_the_inferred_table_are_in_the_section() -> None:
    doc = _findings(["mac-case-flipped"])
    (group,) = doc["groups"]
    assert group["findings"], "the deviant planner must disagree somewhere"
    section = html.explore_section(doc)
    text = _text(section)
    assert f"Firmware {group['firmware']} × {group['model']}" in text
    for f in group["findings"]:
        assert str(escape(f["minimal_template"])) in section
        assert f"{f['reproduced']}/{f['confirm_runs']}" in text
        for url in f["observed"]["requests"]:
            assert str(escape(url)) in section
    changed = [r for r in group["behaviour"] if r["changed"]]
    assert changed and all(f"{r['inferred_value']} (differs)" in text for r in changed)
    assert "mac_case" in text


def test_nothing_found_says_so_and_values_are_escaped() -> None:
    doc = _findings([])
    doc["groups"][0]["findings"] = []
    doc["groups"][0]["firmware"] = "<script>alert(1)</script>"
    section = html.explore_section(doc)
    assert "<script>" not in section and "&lt;script&gt;" in section
    assert "0 findings" in _text(section)


def test_hil_report_html_includes_the_exploration(tmp_path: Path) -> None:
    run = tmp_path / "x"
    (run / "explore").mkdir(parents=True)
    (run / "certification.json").write_text(json.dumps(_record()))
    (run / "explore" / "findings.json").write_text(json.dumps(_findings(["host-case-kept"])))
    result = CliRunner().invoke(app, ["report", "html", str(run)])
    assert result.exit_code == 0, result.output
    page = (run / "certification.html").read_text()
    assert 'id="explore"' in page and "Differential exploration" in page
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "certification.json").write_text(json.dumps(_record()))
    assert CliRunner().invoke(app, ["report", "html", str(plain)]).exit_code == 0
    assert 'id="explore"' not in (plain / "certification.html").read_text()


def test_switch_findings_under_the_manual_profile_are_shown() -> None:
    doc = _findings([], get_profile("2.2"))
    text = _text(html.explore_section(doc))
    assert "switch" in text and "url_option_bare_host" in text
