"""The certification record survives crashes and keeps the documented key names."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from framework.runner.record import CertificationRecord, RecordError, evidence_entry, load_record


def test_written_case_by_case_with_documented_keys(tmp_path: Path) -> None:
    rec = CertificationRecord(tmp_path, {"id": "r1", "rig": "sim"}, [{"name": "ph1"}])
    assert json.loads((tmp_path / "certification.json").read_text())["cases"] == []
    rec.add_case({"id": "a", "phone": "ph1", "model": "440HD", "verdict": "passed"})
    # durable when add_case returns: the JSONL line, which load_record reads
    doc = load_record(tmp_path)
    assert set(doc) == {"run", "phones", "cases", "summary"}
    assert doc["summary"]["passed"] == 1 and doc["summary"]["total"] == 1
    rec.add_case({"id": "b", "phone": "ph1", "model": "440HD", "verdict": "broken"})
    doc = load_record(tmp_path)
    assert [c["id"] for c in doc["cases"]] == ["a", "b"] and doc["summary"]["broken"] == 1
    rec.update_phone("ph1", state="quarantined")  # written at once, with the cases so far
    doc = json.loads((tmp_path / "certification.json").read_text())
    assert doc["phones"][0]["state"] == "quarantined" and len(doc["cases"]) == 2
    rec.add_case({"id": "c", "phone": "ph1", "model": "440HD", "verdict": "passed"})
    rec.finish()
    doc = json.loads((tmp_path / "certification.json").read_text())
    assert [c["id"] for c in doc["cases"]] == ["a", "b", "c"]
    assert doc["run"]["status"] == "finished" and doc["summary"]["total"] == 3


def test_kill_9_keeps_finished_cases(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from framework.runner.record import CertificationRecord
        rec = CertificationRecord(Path({str(tmp_path)!r}), {{"id": "r"}}, [])
        for i in range(3):
            rec.add_case({{"id": f"c{{i}}", "verdict": "passed"}})
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2])
    assert proc.returncode == -9
    doc = load_record(tmp_path)
    assert [c["id"] for c in doc["cases"]] == ["c0", "c1", "c2"]


def test_torn_jsonl_line_is_dropped_and_resume_keeps_cases(tmp_path: Path) -> None:
    rec = CertificationRecord(tmp_path, {"id": "r"}, [])
    rec.add_case({"id": "c0", "verdict": "passed"})
    with open(tmp_path / "cases.jsonl", "a") as f:
        f.write('{"id": "c1", "verd')
    again = CertificationRecord(tmp_path, {"id": "r"}, [])
    assert [c["id"] for c in again.cases] == ["c0"]


def test_evidence_has_size_and_hash(tmp_path: Path) -> None:
    f = tmp_path / "ev" / "x.log"
    f.parent.mkdir()
    f.write_bytes(b"hello")
    e = evidence_entry(f, tmp_path, "console")
    assert e == {"kind": "console", "path": "ev/x.log", "bytes": 5,
                 "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}


def test_bad_record_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match="no certification record"):
        load_record(tmp_path)
    (tmp_path / "certification.json").write_text("{not json")
    with pytest.raises(RecordError, match="not valid JSON"):
        load_record(tmp_path)
