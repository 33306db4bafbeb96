"""One certification record across rigs (framework.report.merge, `hil report merge`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from framework.records import load_record
from framework.report.merge import SourceRun, merge
from framework.runner.record import CertificationRecord
from tests.records.samples import case, phone_record, run_record

ROOT = Path(__file__).resolve().parents[2]


def _run(reports: Path, run_id: str, rig: str, verdicts: list[str]) -> Path:
    rec = CertificationRecord(reports / run_id, run_record(run_id, rig=rig), [phone_record()])
    for i, v in enumerate(verdicts):
        rec.add_case(case(f"case-{i}", "ph1", v))
    rec.finish()
    return reports / run_id


def test_merged_record_keeps_the_keys_and_tags_every_case(tmp_path: Path) -> None:
    a = _run(tmp_path, "ra", "bench-a", ["passed", "failed"])
    b = _run(tmp_path, "rb", "bench-b", ["passed"])
    doc = merge([SourceRun(load_record(a), "place-a", a), SourceRun(load_record(b), None, b)],
                run_id="lab-1", places=[{"place": "place-c", "status": "skipped"}])
    assert set(doc.to_json()) == {"run", "phones", "cases", "summary"}
    assert {(c.place, c.rig, c.phone, c.rig_phone) for c in doc.cases} == {
        ("place-a", "bench-a", "place-a/ph1", "ph1"), ("bench-b", "bench-b", "bench-b/ph1",
                                                       "ph1")}
    assert doc.summary == {"passed": 2, "failed": 1, "broken": 0, "observed": 0,
                           "skipped": 0, "total": 3}
    assert [p.name for p in doc.phones] == ["place-a/ph1", "bench-b/ph1"]
    assert [r["summary"]["total"] for r in doc.run.runs or []] == [2, 1]
    assert doc.run.places == [{"place": "place-c", "status": "skipped"}]
    assert doc.run.status == "finished"


def test_two_runs_for_one_place_is_an_error(tmp_path: Path) -> None:
    a = _run(tmp_path, "ra", "bench-a", ["passed"])
    with pytest.raises(ValueError, match="two runs for place 'bench-a'"):
        merge([SourceRun(load_record(a)), SourceRun(load_record(a))], run_id="x")


def _hil(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_hil_report_merge_writes_one_record_and_report(tmp_path: Path) -> None:
    a = _run(tmp_path, "ra", "bench-a", ["passed"])
    b = _run(tmp_path, "rb", "bench-b", ["observed", "broken"])
    same_rig = _run(tmp_path, "rc", "bench-b", ["passed"])
    res = _hil("report", "merge", str(a), str(b / "certification.json"), str(same_rig),
               "--out", str(tmp_path / "merged"))
    assert res.returncode == 0, res.stderr
    doc = load_record(tmp_path / "merged")
    assert doc.run.id == "merged"
    # the rig name is the place; two runs of one rig are told apart by their run id
    assert sorted({str(c.place) for c in doc.cases}) == ["bench-a", "rb", "rc"]
    html = (tmp_path / "merged" / "certification.html").read_text()
    assert "bench-a/ph1" in html and "rb/ph1" in html
    assert json.loads((tmp_path / "merged" / "certification.json").read_text())[
        "summary"]["total"] == 4


def test_hil_report_merge_bad_input_is_one_line(tmp_path: Path) -> None:
    res = _hil("report", "merge", str(tmp_path / "nope"), "--out", str(tmp_path / "m"))
    assert res.returncode == 2
    assert "no certification record" in res.stderr and "Traceback" not in res.stderr
