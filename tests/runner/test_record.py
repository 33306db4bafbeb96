"""The certification record survives crashes and keeps the documented key names."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from framework.records import RecordError, load_record
from framework.runner.record import CertificationRecord
from tests.records.samples import case, case_json, phone_record, run_record


def test_written_case_by_case_with_documented_keys(tmp_path: Path) -> None:
    rec = CertificationRecord(tmp_path, run_record(), [phone_record()])
    assert json.loads((tmp_path / "certification.json").read_text())["cases"] == []
    rec.add_case(case("a"))
    # durable when add_case returns: the JSONL line, which load_record reads
    doc = load_record(tmp_path)
    assert set(doc.to_json()) == {"run", "phones", "cases", "summary"}
    assert doc.summary["passed"] == 1 and doc.summary["total"] == 1
    rec.add_case(case("b", verdict="broken"))
    doc = load_record(tmp_path)
    assert [c.id for c in doc.cases] == ["a", "b"] and doc.summary["broken"] == 1
    rec.update_phone("ph1", state="quarantined")  # written at once, with the cases so far
    raw = json.loads((tmp_path / "certification.json").read_text())
    assert raw["phones"][0]["state"] == "quarantined" and len(raw["cases"]) == 2
    rec.add_case(case("c"))
    rec.finish()
    raw = json.loads((tmp_path / "certification.json").read_text())
    assert [c["id"] for c in raw["cases"]] == ["a", "b", "c"]
    assert raw["run"]["status"] == "finished" and raw["summary"]["total"] == 3
    assert raw["cases"][0] == case_json("a")  # the keys as the runner built them, no more


def test_kill_9_keeps_finished_cases(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from framework.runner.record import CertificationRecord
        from tests.records.samples import case, run_record
        rec = CertificationRecord(Path({str(tmp_path)!r}), run_record(), [])
        for i in range(3):
            rec.add_case(case(f"c{{i}}"))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    assert proc.returncode == -9
    doc = load_record(tmp_path)
    assert [c.id for c in doc.cases] == ["c0", "c1", "c2"]


def test_torn_jsonl_line_is_dropped_and_resume_keeps_cases(tmp_path: Path) -> None:
    rec = CertificationRecord(tmp_path, run_record(), [])
    rec.add_case(case("c0"))
    with open(tmp_path / "cases.jsonl", "a") as f:
        f.write('{"id": "c1", "verd')
    again = CertificationRecord(tmp_path, run_record(), [])
    assert [c.id for c in again.cases] == ["c0"]


def test_an_amended_case_replaces_the_first_verdict(tmp_path: Path) -> None:
    rec = CertificationRecord(tmp_path, run_record(), [])
    first = case("a")
    rec.add_case(first)
    rec.add_case(case("other"))
    assert rec.amend_case(first.amended(verdict="failed", reason="late request ..."))
    assert not rec.amend_case(first.amended(id="never-ran"))
    rec.finish()
    doc = load_record(tmp_path)
    assert [c.verdict for c in doc.cases] == ["failed", "passed"]
    assert doc.summary["failed"] == 1 and doc.summary["total"] == 2


def test_bad_record_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="no certification record"):
        load_record(tmp_path)
    (tmp_path / "certification.json").write_text("{not json")
    with pytest.raises(RecordError, match="not valid JSON"):
        load_record(tmp_path)
    (tmp_path / "certification.json").write_text('{"run": {}}')
    with pytest.raises(RecordError, match="missing top-level key 'phones'"):
        load_record(tmp_path)
