"""Allure as its users set it up (framework.report.allure): labels, amended results, config."""

from __future__ import annotations

import json
from pathlib import Path

from framework.records import document
from framework.report import allure
from tests.records.samples import case, phone_record, run_record

GROUND = {"manual": {"kind": "manual", "source": "Admin Manual", "quote": "q"},
          "field": {"kind": "field", "source": "field report", "quote": "q"},
          "lab": {"kind": "lab", "source": "LAB-NOTES", "quote": "q"}}


def _assertion(kind: str, judged: bool) -> dict[str, object]:
    return {"id": f"a/{kind}", "what": "x", "expected": "y", "judged": judged,
            "ground": GROUND[kind], "holds": True, "detail": ""}


def test_manual_reference_splits_into_document_and_table_or_section() -> None:
    assert allure.manual_parts("Admin Manual 2.2.8, 10.2.2, Table 10-2 row 1") == (
        "Admin Manual 2.2.8", "Table 10-2")
    assert allure.manual_parts("Admin Manual 2.2.8, 10.2.2-10.2.3: Option 160 > 66/67 > 43") == (
        "Admin Manual 2.2.8", "section 10.2.2-10.2.3")
    assert allure.manual_parts("[F] field configurations: x")[0] == "field reports"
    assert allure.manual_parts("no manual sentence: the value is unusable")[0] == \
        "no manual sentence"


def test_severity_is_the_strongest_judged_ground() -> None:
    both = case(assertions=[_assertion("lab", True), _assertion("field", True),
                            _assertion("manual", False)])
    assert allure.severity(both) == "normal"  # the manual one was not judged
    assert allure.severity(case(assertions=[_assertion("manual", True)])) == "critical"
    assert allure.severity(case(assertions=[_assertion("lab", True)])) == "minor"
    assert allure.severity(case()) == "normal"  # an older record without assertions


def test_labels_tree_tags_parameters_and_link() -> None:
    c = case("t10-2/r2", options={"66": "192.0.2.1", "67": "a.img;b.cfg", "43": "x"},
             manual="Admin Manual 2.2.8, 10.2.2, Table 10-2 row 2")
    shown = allure.labels(c)
    assert (shown["parent_suite"], shown["suite"], shown["sub_suite"]) == (
        "2.2.8.61", "440HD", "precedence")
    assert (shown["epic"], shown["feature"], shown["story"]) == (
        "Admin Manual 2.2.8", "Table 10-2", "t10-2/r2")
    assert shown["tags"] == ["66/67", "43"]
    assert shown["parameters"] == {"phone": "ph1",
                                   "options": "66=192.0.2.1; 67=a.img;b.cfg; 43=x"}
    name, url = shown["link"]
    assert name == c.manual and url.startswith("file://") and "10.2.2" in url
    assert allure.labels(case(manual="LAB-NOTES: x"))["link"] is None


def _result(tmp: Path, row: str, phone: str, status: str) -> Path:
    path = tmp / f"{row.replace('/', '_')}-{phone}-result.json"
    path.write_text(json.dumps({
        "name": row, "status": status, "start": 5, "stop": 6,
        "parameters": [{"name": "case", "value": "Case(id='x', ...)"}],
        "labels": [{"name": "row", "value": row}, {"name": "phone", "value": phone}]}))
    return path


def test_results_get_the_record_times_parameters_and_observed_status(tmp_path: Path) -> None:
    cases = [case("a", "ph1", "observed", matches_core=False, start=100.25, end=103.5),
             case("b", "ph1", "observed", matches_core=True),
             case("c", "ph1", "failed")]
    doc = document(run_record(), [phone_record()], cases)
    paths = [_result(tmp_path, "a", "ph1", "skipped"), _result(tmp_path, "b", "ph1", "skipped"),
             _result(tmp_path, "c", "ph1", "failed"), _result(tmp_path, "z", "ph9", "passed")]
    assert allure.amend_results(tmp_path, doc) == 3
    a, b, c, z = (json.loads(p.read_text()) for p in paths)
    assert (a["start"], a["stop"]) == (100250, 103500)
    assert a["status"] == "unknown"
    assert a["statusDetails"]["message"].startswith(allure.OBSERVED_DIFFERS)
    assert b["statusDetails"]["message"].startswith(allure.OBSERVED_MATCHES)
    assert c["status"] == "failed" and c["parameters"][0] == {"name": "phone", "value": "ph1"}
    assert z["start"] == 5  # not a case of the record: left alone
    names = [cat["name"] for cat in json.loads((tmp_path / "categories.json").read_text())]
    assert allure.OBSERVED_DIFFERS in names and allure.OBSERVED_MATCHES in names


def test_config_names_the_rig_and_firmware_and_keeps_history(tmp_path: Path) -> None:
    doc = document(run_record("r7"), [phone_record()], [case()])
    cmd = allure.generate_command("allure", tmp_path, doc, tmp_path.parent)
    config = json.loads((tmp_path / "allurerc.json").read_text())
    assert "rig sim" in config["name"] and "2.2.8.61" in config["name"]
    assert config["historyPath"] == str(tmp_path.parent / allure.HISTORY)
    assert config["plugins"]["awesome"]["options"]["groupBy"] == [
        "parentSuite", "suite", "subSuite"]
    assert cmd[cmd.index("--config") + 1] == str(tmp_path / "allurerc.json")
