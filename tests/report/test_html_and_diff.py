"""The HTML certification report and the run-to-run diff, rendered from records."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from framework.records import load_record
from framework.report import diff, html, manifest
from framework.runner.record import CertificationRecord
from tests.records.samples import case, phone_record, run_record

ROOT = Path(__file__).resolve().parents[2]


def make_run(d: Path, verdicts: dict[tuple[str, str], str], firmware: str = "2.2.8.61") -> Path:
    rec = CertificationRecord(d, run_record(d.name, start=0.0),
                              [phone_record(firmware=firmware)])
    for (case_id, model), v in verdicts.items():
        rec.add_case(case(case_id, f"ph-{model}", v, model=model, firmware=firmware,
                          observed=[], start=0.0))
    rec.finish()
    return d


def test_html_has_the_matrix_and_escapes(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r1", {("t10-2/r2-host-ip", "440HD"): "passed",
                                      ("t10-2/r2-host-ip", "420HD"): "failed"})
    page = html.render(load_record(run))
    assert 'id="matrix"' in page and 'data-verdict="failed"' in page
    assert "because failed &lt;b&gt;" in page and "because failed <b>" not in page


def test_html_shows_each_assertion_with_its_ground_and_the_counts_per_ground(
        tmp_path: Path) -> None:
    from tests.runner.test_verdict_grounds import CFG, EXP, FW, j

    judged = j(EXP, [FW.replace("audiocodes", "AudioCodes"), CFG.replace("8F", "8f")])
    rec = CertificationRecord(tmp_path, run_record("r1", start=0.0), [phone_record()])
    rec.add_case(case("t10-2/r2-host-name", "ph1", judged.verdict.value, observed=[],
                      start=0.0, assertions=list(judged.assertions), notes=list(judged.notes)))
    rec.add_case(case("robust/x", "ph1", "observed", observed=[], start=0.0,
                      matches_core=False))
    rec.finish()
    doc = load_record(tmp_path)
    assert doc.summary["by_ground"] == {"field": {"failed": 1}, "manual": {"passed": 4}}
    page = html.render(doc)
    assert 'id="by-ground"' in page and "field: failed <b>1</b>" in page
    assert 'class="assertions"' in page and "Table 10-2, row 2" in page
    assert "note: firmware: requested tftp://AudioCodes.lab.example/440HD.img" in page
    assert "differs from the core" in page


def test_diff_names_changed_cases(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", {("x", "440HD"): "passed", ("y", "440HD"): "passed"})
    b = make_run(tmp_path / "b", {("x", "440HD"): "failed", ("y", "440HD"): "passed"},
                 firmware="2.2.9.1")
    changes = diff.diff(load_record(a), load_record(b))
    assert [(c.case, c.before, c.after) for c in changes] == [("x", "passed", "failed")]
    for run in (a, b):  # `hil report diff` compares runs that verify (MANIFEST.json)
        manifest.write(run)
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "report", "diff", str(a), str(b),
                           "--json"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)[0]["case"] == "x"


def test_report_cli_bad_path_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "report", "html",
                           str(tmp_path / "nope")], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "no certification record" in proc.stderr


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium not installed")
def test_report_renders_in_a_real_browser(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r1", {("t10-2/r2-host-ip", "440HD"): "passed",
                                      ("t10-1/server-ftp", "440HD"): "failed"})
    page = html.write(load_record(run), run / "certification.html")
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-500:]
    dom = proc.stdout
    assert 'id="matrix"' in dom
    assert dom.count('data-verdict="passed"') == 1 and dom.count('data-verdict="failed"') == 1
