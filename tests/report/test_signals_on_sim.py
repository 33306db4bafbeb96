"""Issue 17's acceptance for the reports, on one on-the-wire run: `hil run` on a sim rig
whose ph2 runs a deviant firmware (config-before-firmware) and whose ph3 never boots, with
a promised case (ph1 passes, ph2 fails, ph3 broken) and an unpromised one (ph1 observed
and matching the core, ph2 observed and differing).

certification.html is opened in headless Chromium (its DOM as the browser built it; a
screenshot kept in the test's tmp dir, ``<tmp>/screenshots/certification.png``, and
copied to ``$HIL_ARTEFACTS`` when set); the Allure report of the same run is checked from
its generated data files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from framework.netns import have_privileges
from framework.records import CertificationDocument, load_record
from framework.report import allure, timeline
from framework.report.pdf import find_browser
from framework.sim.rigfile import write_sim_rig

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.netns, pytest.mark.timeout(600),
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")]
PROMISED, UNPROMISED = "t10-2/r2-host-ip", "robust/160-long-rfc3396"
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--no-default-browser-check", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--hide-scrollbars")


def _browser() -> str:
    try:
        return find_browser()
    except Exception as exc:  # the browser is a setup dependency (make setup installs it)
        pytest.skip(str(exc))


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="hil-shot-") as tmp:
        env = {**os.environ, "XDG_CONFIG_HOME": tmp, "XDG_CACHE_HOME": tmp}
        return subprocess.run([_browser(), *BROWSER_FLAGS, f"--user-data-dir={tmp}/p", *args],
                              capture_output=True, text=True, timeout=120, env=env, cwd=tmp)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("signals")
    rig = write_sim_rig(tmp / "rig.yaml", prefix=f"hsr{os.getpid() % 1000}", phones=3,
                        boot_time_s=0.2, deviations={"ph2": ["config-before-firmware"]},
                        boot_times={"ph3": 120.0})
    reports = tmp / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "framework.cli", "run", "--rig", str(rig), "--reports",
         str(reports), "--run-id", "signals", "--settle", "0.6", "--boot-timeout", "8",
         "-k", f"{PROMISED.split('/')[1]} or {UNPROMISED.split('/')[1]}"],
        cwd=ROOT, capture_output=True, text=True, timeout=500)
    run_dir = reports / "signals"
    assert (run_dir / "certification.html").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_dir


@pytest.fixture(scope="module")
def doc(run: Path) -> CertificationDocument:
    return load_record(run)


def _case(doc: CertificationDocument, case_id: str, phone: str):  # type: ignore[no-untyped-def]
    return next(c for c in doc.cases if c.id == case_id and c.phone == phone)


def test_the_run_has_every_kind_of_verdict(doc: CertificationDocument) -> None:
    verdicts = {(c.id, c.phone): timeline.shade(c) for c in doc.cases}
    assert verdicts[(PROMISED, "ph1")] == "passed"
    assert verdicts[(PROMISED, "ph2")] == "failed"
    assert verdicts[(PROMISED, "ph3")] == "broken"
    assert verdicts[(UNPROMISED, "ph1")] == "observed-matches"
    assert verdicts[(UNPROMISED, "ph2")] == "observed-differs"
    judged = _case(doc, PROMISED, "ph1")
    assert [m.type for m in judged.dhcp or []][:4] == ["DISCOVER", "OFFER", "REQUEST", "ACK"]
    assert all(o.bytes is not None for o in judged.observed)


def test_certification_html_in_chromium(run: Path, doc: CertificationDocument,
                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    page = run / "certification.html"
    dumped = _chromium("--dump-dom", page.resolve().as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    failed = _case(doc, PROMISED, "ph2")
    cell = re.search(r'<td class="v failed"[^>]*>\s*<a href="#([^"]+)"', dom)
    assert cell, "no matrix cell of a failed case with a link"
    assert cell[1] == timeline.anchor(failed)
    section = re.search(rf'<details[^>]*id="{re.escape(cell[1])}"[^>]*>(.*?)</details>', dom,
                        re.S)
    assert section, "the failed cell's link leads nowhere"
    svg = re.search(r'<svg[^>]*class="timeline".*?</svg>', section[1], re.S)
    assert svg, "no timeline picture in the failed case"
    assert 'class="expected"' in svg[0]  # the expected requests are marked
    assert "DHCP DISCOVER" in svg[0] and 'class="settle"' in svg[0]
    assert 'class="lanes"' in dom and "<script" not in page.read_text()
    assert 'class="v observed-matches"' in dom and 'class="v observed-differs"' in dom
    shots = tmp_path_factory.mktemp("screenshots")
    shot = shots / "certification.png"
    taken = _chromium(f"--screenshot={shot}", "--window-size=1280,2400",
                      page.resolve().as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000, taken.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("HIL_ARTEFACTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)


def test_the_allure_report_has_the_tree_and_the_observed_categories(
        run: Path, doc: CertificationDocument) -> None:
    results = [json.loads(p.read_text()) for p in (run / "allure-results").glob("*-result.json")]
    by_row = {(lab["row"], lab["phone"]): r for r in results
              for lab in [{x["name"]: x["value"] for x in r["labels"]}]}
    broken = by_row[(PROMISED, "ph3")]
    assert broken["status"] == "broken"
    observed = by_row[(UNPROMISED, "ph2")]
    assert observed["status"] == "unknown"
    assert observed["statusDetails"]["message"].startswith(allure.OBSERVED_DIFFERS)
    failed = by_row[(PROMISED, "ph2")]
    case = _case(doc, PROMISED, "ph2")
    assert (failed["start"], failed["stop"]) == (int(case.start * 1000), int(case.end * 1000))
    assert failed["stop"] - failed["start"] > 100  # the case's real time, not ~1 ms
    assert {"name": "phone", "value": "ph2"} in failed["parameters"]
    labels = {x["name"]: x["value"] for x in failed["labels"]}
    assert (labels["parentSuite"], labels["suite"], labels["subSuite"]) == (
        case.firmware, case.model, case.group)
    assert labels["severity"] == "critical" and labels["epic"] == "Admin Manual 2.2.8"
    report = run / "allure-report"
    if not (report / "widgets" / "tree.json").exists():
        pytest.skip("allure generator not installed (make setup installs allure@3)")
    tree = json.loads((report / "widgets" / "tree.json").read_text())
    groups = tree["groupsById"]
    top = [groups[g]["name"] for g in tree["root"]["groups"]]
    assert top == [case.firmware]
    models = {groups[g]["name"] for t in tree["root"]["groups"] for g in groups[t]["groups"]}
    assert {"440HD", "405HD", "420HD"} <= models
    categories = json.loads((report / "widgets" / "categories.json").read_text())
    names = {n["name"] for n in categories["nodes"].values() if n.get("type") == "category"}
    assert {allure.OBSERVED_DIFFERS, allure.OBSERVED_MATCHES} <= names
    assert "rig" in (run / "allurerc.json").read_text()
    history = run.parent / allure.HISTORY  # the next run in these reports shows the trend
    assert history.exists() and PROMISED in history.read_text()
    generator = shutil.which("allure") or str(ROOT / ".tools" / "node_modules" / ".bin" / "allure")
    again = subprocess.run([generator, "generate", str(run / "allure-results"), "--config",
                            str(run / "allurerc.json"), "-o", str(run.parent / "again")],
                           capture_output=True, text=True, timeout=300, cwd=run)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    shown = [json.loads(p.read_text()) for p in (run.parent / "again" / "data" /
                                                  "test-results").glob("*.json")]
    assert shown and all(len(r.get("history", [])) >= 1 for r in shown)
    index = (report / "index.html").read_text()
    assert "400HD certification" in index or "400HD certification" in json.dumps(
        json.loads((report / "summary.json").read_text()))
