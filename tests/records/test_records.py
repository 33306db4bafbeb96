"""The record's types: today's files round-trip exactly; a key they do not know is one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from framework.records import (
    CaseResult,
    CertificationDocument,
    EvidenceItem,
    ObservedRequest,
    PhoneRecord,
    RecordError,
    RunRecord,
    evidence_item,
    load_cases,
    load_document,
    load_record,
    summarise,
)
from tests.records.samples import case, case_json, phone_meta, run_meta

ROOT = Path(__file__).resolve().parents[2]


def _doc(**cases_over: Any) -> dict[str, Any]:
    judged = case_json("precedence/66", "ph1")
    broken = case_json("precedence/160", "ph2", "broken", expected=None, observed=[],
                       would_have_been="passed", evidence_error="disk full")
    for k in ("trigger", "ack_at", "cycles", "differences", "matches_core"):
        broken.pop(k)
    late = case_json("precedence/43", "ph1", "failed", late=[
        {"time": 12.5, "protocol": "http", "url": "http://192.0.2.1/x.cfg", "host": "192.0.2.1",
         "outcome": "served", "detail": "GET", "offset_s": 2.4}])
    crashed = case_json("precedence/none", "ph2", "broken", traceback="Traceback ...",
                        evidence=[{"kind": "pcap", "path": "evidence/ph2/x/traffic.pcap",
                                   "bytes": 10, "sha256": "00" * 32}], **cases_over)
    upgrade = case_json("upgrade/installs-release", "ph1", expected=None, running="2.2.8.61",
                        offer={"url": "tftp://192.0.2.1/release/x.img", "rebooted": True},
                        observed=[{"time": 13.0, "protocol": "tftp", "url": "tftp://x/y.img",
                                   "host": None, "outcome": "served",
                                   "detail": "100 bytes sent"}])
    cases = [judged, broken, late, crashed, upgrade]
    return {
        "run": run_meta(end=20.0, status="finished", release={"versions": ["2.2.9.1"]},
                        restore=True),
        "phones": [phone_meta(state="ok", profile="2.2"),
                   phone_meta("ph2", state="quarantined", broken_reason="no console",
                              firmware_before="2.2.8.61", release_install={"outcome": "broken"},
                              release_evidence=[{"kind": "summary", "path": "s.json",
                                                 "bytes": 2, "sha256": "ab" * 32}])],
        "cases": cases,
        "summary": {"broken": 2, "failed": 1, "observed": 0, "passed": 2, "skipped": 0,
                    "total": 5},
    }


def test_every_shape_of_case_round_trips_to_the_same_json(tmp_path: Path) -> None:
    raw = _doc()
    path = tmp_path / "certification.json"
    text = json.dumps(raw, indent=2, sort_keys=True)
    path.write_text(text)
    doc = load_document(path)
    assert doc.to_json() == raw
    assert json.dumps(doc.to_json(), indent=2, sort_keys=True) == text
    # an optional key that was never set stays absent; one set to null stays null
    broken = doc.cases[1]
    assert broken.verdict == "broken" and broken.would_have_been == "passed"
    assert "trigger" not in broken.to_json() and doc.run.to_json()["profile_override"] is None
    assert isinstance(doc.cases[2].late, list) and doc.cases[2].late[0].offset_s == 2.4
    assert doc.phones[1].release_evidence == [EvidenceItem(kind="summary", path="s.json",
                                                           bytes=2, sha256="ab" * 32)]
    assert summarise(doc.cases) == {"passed": 2, "failed": 1, "broken": 2, "observed": 0,
                                    "skipped": 0, "total": 5}


def test_a_merged_record_round_trips(tmp_path: Path) -> None:
    raw = _doc(rig="bench-a", place="place-a", rig_phone="ph2")
    raw["run"] = {"id": "lab-1", "kind": "merged", "rig": "bench-a", "framework_revision": "abc",
                  "start": 1, "end": None, "status": "finished", "merged_at": 2.5,
                  "runs": [{"id": "r1", "summary": {"total": 1}}], "places": []}
    (tmp_path / "certification.json").write_text(json.dumps(raw))
    doc = load_record(tmp_path)
    assert doc.to_json() == raw
    assert json.dumps(doc.to_json(), sort_keys=True) == json.dumps(raw, sort_keys=True)  # 1 stays 1


@pytest.mark.parametrize("run", sorted((ROOT / "reports").glob("*/certification.json")))
def test_the_runs_on_disk_round_trip(run: Path) -> None:
    """Whatever records this checkout holds (none in a fresh clone) load and write back."""
    raw = json.loads(run.read_text())
    assert load_document(run).to_json() == raw


def test_an_unknown_key_is_one_line_naming_the_file_the_case_and_the_key(
        tmp_path: Path) -> None:
    raw = _doc()
    raw["cases"][2]["colour"] = "red"
    (tmp_path / "certification.json").write_text(json.dumps(raw))
    with pytest.raises(RecordError) as err:
        load_record(tmp_path)
    msg = str(err.value)
    assert msg == (f"{tmp_path / 'certification.json'}: case 'precedence/43' on 'ph1' "
                   f"(cases[2]): unknown key 'colour'")
    assert "\n" not in msg and "pydantic" not in msg


def test_a_missing_key_is_named(tmp_path: Path) -> None:
    raw = _doc()
    del raw["cases"][0]["verdict"]
    (tmp_path / "certification.json").write_text(json.dumps(raw))
    with pytest.raises(RecordError, match=r"certification.json: case 'precedence/66' on 'ph1' "
                                          r"\(cases\[0\]\): missing key 'verdict'$"):
        load_record(tmp_path)
    raw = _doc()
    del raw["run"]["rig"]
    (tmp_path / "certification.json").write_text(json.dumps(raw))
    with pytest.raises(RecordError, match=r"certification.json: run: missing key 'rig'$"):
        load_record(tmp_path)


def test_an_old_record_with_a_renamed_key_names_both(tmp_path: Path) -> None:
    raw = _doc()
    raw["cases"][0]["source"] = raw["cases"][0].pop("manual")
    (tmp_path / "certification.json").write_text(json.dumps(raw))
    with pytest.raises(RecordError, match="missing key 'manual'; unknown key 'source'"):
        load_document(tmp_path / "certification.json")


def test_a_bad_value_and_a_nested_key_are_named() -> None:
    with pytest.raises(RecordError, match=r"^x:3: 'verdict': Input should be 'passed'"):
        CaseResult.from_json(case_json(verdict="maybe"), where="x:3")
    bad = case_json()
    bad["observed"][0]["port"] = 69
    with pytest.raises(RecordError, match=r"^x: unknown key 'observed.0.port'$"):
        CaseResult.from_json(bad, where="x")


def test_jsonl_lines_are_named_by_line_and_a_torn_line_is_dropped(tmp_path: Path) -> None:
    jsonl = tmp_path / "cases.jsonl"
    lines = [json.dumps(case_json("a"), sort_keys=True),
             json.dumps(case_json("a", verdict="failed"), sort_keys=True),  # amended
             json.dumps(case_json("b"), sort_keys=True), '{"id": "c", "verd']
    jsonl.write_text("\n".join(lines))
    assert [(c.id, c.verdict) for c in load_cases(jsonl)] == [("a", "failed"), ("b", "passed")]
    assert [json.dumps(c.to_json(), sort_keys=True) for c in load_cases(jsonl)] == lines[1:3]
    jsonl.write_text(lines[0] + "\n" + json.dumps({**case_json("z"), "extra": 1}) + "\n")
    with pytest.raises(RecordError, match=rf"^{jsonl}:2: case 'z' on 'ph1' \(cases\[1\]\): "
                                          r"unknown key 'extra'$"):
        load_cases(jsonl)


def test_records_are_frozen_and_amended_by_copy() -> None:
    c = case()
    with pytest.raises(ValueError):
        c.verdict = "failed"
    later = c.amended(verdict="failed", late=[ObservedRequest(
        time=12.0, protocol="tftp", url=None, host="x", outcome="served", detail="RRQ")])
    assert (c.verdict, later.verdict) == ("passed", "failed") and later.key == ("a", "ph1")
    assert later.to_json()["late"][0]["url"] is None and "late" not in c.to_json()
    with pytest.raises(RecordError):
        c.amended(verdict="maybe")
    assert PhoneRecord.from_json(phone_meta()).amended(state="ok").state == "ok"
    assert RunRecord.from_json(run_meta()).amended(status="finished").end is None
    with pytest.raises(RecordError, match="not a JSON object"):
        CertificationDocument.from_json([], where="x")


def test_evidence_item_has_size_and_hash(tmp_path: Path) -> None:
    f = tmp_path / "ev" / "x.log"
    f.parent.mkdir()
    f.write_bytes(b"hello")
    assert evidence_item(f, tmp_path, "console").to_json() == {
        "kind": "console", "path": "ev/x.log", "bytes": 5,
        "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}
    shutil.rmtree(tmp_path / "ev")


# --- grounds (issue 16): assertions, notes and summary.by_ground -------------------------

def _assertion(aid: str, kind: str, judged: bool, holds: bool) -> dict[str, Any]:
    return {"id": aid, "what": aid, "expected": "x", "judged": judged,
            "ground": {"kind": kind, "source": "Admin Manual 2.2.8, 10.2.2", "quote": "q"},
            "holds": holds, "detail": "" if holds else "differs"}


def test_a_case_with_assertions_round_trips_and_is_counted_per_ground(tmp_path: Path) -> None:
    raw = _doc()
    raw["cases"][0]["assertions"] = [_assertion("request/firmware", "manual", True, True),
                                     _assertion("mac-case", "field", True, False),
                                     _assertion("late", "lab", False, False)]
    raw["cases"][0]["notes"] = ["firmware: requested tftp://H/x.img, equivalent ..."]
    raw["cases"][1]["assertions"] = [_assertion("request/firmware", "manual", True, True)]
    raw["summary"]["by_ground"] = {"field": {"failed": 1}, "lab": {"observed": 1},
                                   "manual": {"passed": 1, "broken": 1}}
    (tmp_path / "certification.json").write_text(json.dumps(raw))
    doc = load_document(tmp_path / "certification.json")
    assert doc.to_json() == raw
    assert summarise(doc.cases)["by_ground"] == raw["summary"]["by_ground"]
    assert doc.cases[0].assertions is not None and doc.cases[0].assertions[1].ground.kind == "field"


def test_an_older_record_without_grounds_loads_and_its_summary_is_unchanged(
        tmp_path: Path) -> None:
    raw = _doc()
    (tmp_path / "certification.json").write_text(json.dumps(raw))
    doc = load_record(tmp_path)
    assert all(c.assertions is None and c.notes is None for c in doc.cases)
    assert "by_ground" not in summarise(doc.cases)
    assert "assertions" not in doc.cases[0].to_json()


def test_a_ground_of_an_unknown_kind_is_named() -> None:
    bad = case_json(assertions=[_assertion("order", "rumour", True, True)])
    with pytest.raises(RecordError, match=r"'assertions.0.ground.kind': Input should be"):
        CaseResult.from_json(bad)


def test_the_by_ground_line_hil_run_prints() -> None:
    from framework.records import by_ground_line

    assert by_ground_line({"passed": 1, "total": 1}) is None
    assert by_ground_line({"by_ground": {"field": {"failed": 1}, "manual": {
        "passed": 4, "failed": 1}}}) == "by ground: field 1 failed; manual 4 passed, 1 failed"
