"""junit.xml from the certification record (issue 17), read back with junitparser: a suite
per phone with its properties, a case per case named by its manual row, *failed* as a
failure, *broken* as an error, *observed* as skipped with its reason; and `hil run`'s exit
codes from the verdicts."""

from __future__ import annotations

from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from framework.records import CertificationDocument, summarise
from framework.report import junit
from framework.run import exit_code
from tests.records.samples import case, phone_record, run_record


def _doc() -> CertificationDocument:
    cases = [
        case("t10-2/r2-host-ip", "ph1", "passed"),
        case("t10-2/r3-host-ip-67-names", "ph1", "failed", reason="asked for /x.cfg"),
        case("robust/160-whitespace", "ph1", "observed", reason="kept the blank",
             matches_core=False),
        case("t10-2/r2-host-ip", "ph2", "broken", reason="PDU outlet 2 is dead",
             model="405HD", mac="00908F000002"),
        case("t10-2/r3-host-ip-67-names", "ph2", "broken", reason="quarantined",
             model="405HD", mac="00908F000002"),
    ]
    phones = [phone_record("ph1", profile="2.2", state="ok"),
              phone_record("ph2", model="405HD", mac="00908F000002", firmware="UC_3.4.8.1",
                           profile="3.4", state="broken", broken_reason="PDU outlet 2 is dead")]
    return CertificationDocument(run=run_record("r1", status="finished", end=20.0),
                                 phones=phones, cases=cases, summary=summarise(cases))


def _read(path: Path) -> dict[str, object]:
    xml = JUnitXml.fromfile(str(path))
    return {suite.name: suite for suite in xml}


def test_one_suite_per_phone_with_its_properties(tmp_path: Path) -> None:
    suites = _read(junit.write(_doc(), tmp_path / "junit.xml"))
    assert set(suites) == {"ph1 440HD", "ph2 405HD"}
    ph2 = suites["ph2 405HD"]
    props = {p.name: p.value for p in ph2.properties()}  # type: ignore[attr-defined]
    assert props["model"] == "405HD" and props["mac"] == "00908F000002"
    assert props["firmware"] == "UC_3.4.8.1" and props["profile"] == "3.4"
    assert props["rig"] == "sim" and props["run_id"] == "r1"
    assert ph2.tests == 2 and ph2.errors == 2 and ph2.failures == 0  # type: ignore[attr-defined]


def test_verdicts_map_to_junit_results(tmp_path: Path) -> None:
    suites = _read(junit.write(_doc(), tmp_path / "junit.xml"))
    ph1 = {tc.name.split(":")[0]: tc for tc in suites["ph1 440HD"]}  # type: ignore[attr-defined]
    assert ph1["t10-2/r2-host-ip"].is_passed
    (fail,) = ph1["t10-2/r3-host-ip-67-names"].result
    assert isinstance(fail, Failure) and fail.message == "asked for /x.cfg"
    (obs,) = ph1["robust/160-whitespace"].result
    assert isinstance(obs, Skipped) and "differs from the core" in obs.message
    assert "kept the blank" in obs.message
    assert "Admin Manual 2.2.8" in ph1["t10-2/r2-host-ip"].name  # the manual row's source
    for tc in suites["ph2 405HD"]:  # type: ignore[attr-defined]
        (err,) = tc.result
        assert isinstance(err, Error) and not isinstance(err, Failure)


@pytest.mark.parametrize(("counts", "pytest_code", "want"), [
    ({"passed": 3, "observed": 1, "total": 4}, 0, 0),
    ({"passed": 3, "failed": 1, "broken": 1, "total": 5}, 1, 1),
    ({"passed": 3, "broken": 1, "total": 4}, 1, 3),
    ({"total": 0}, 5, 2),
    ({"passed": 1, "total": 1}, 3, 3),  # pytest's internal error: the run did not complete
    ({"passed": 1, "total": 1}, 2, 130),
])
def test_exit_code(counts: dict[str, int], pytest_code: int, want: int) -> None:
    assert exit_code(counts, pytest_code) == want


def test_console_text_that_xml_cannot_carry_is_replaced(tmp_path: Path) -> None:
    """A reason quoting raw console output (ESC of a colour code, a NUL) must not break
    junit.xml: the file is written, parses, and keeps the rest of the text."""
    doc = _doc()
    raw = "console: \x1b[31mKernel panic\x1b[0m\x00 after boot"
    doc.cases[3] = doc.cases[3].model_copy(update={"reason": raw})
    doc.phones[1] = doc.phones[1].model_copy(update={"broken_reason": raw})
    suites = _read(junit.write(doc, tmp_path / "junit.xml"))
    (err,) = next(iter(suites["ph2 405HD"])).result  # type: ignore[call-overload]
    assert isinstance(err, Error)
    assert err.message == "console: \ufffd[31mKernel panic\ufffd[0m\ufffd after boot"
    props = {p.name: p.value for p in suites["ph2 405HD"].properties()}  # type: ignore[attr-defined]
    assert "\x1b" not in props["broken_reason"] and "Kernel panic" in props["broken_reason"]
