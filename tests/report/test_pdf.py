"""`hil report pdf`: certification.html printed by headless Chromium, read back with pypdf.

Page 1 holds the matrix (firmware x model x row), every page the evidence digest the HTML
shows (`evidence sha256:<hex>`), and the text is text (searchable). No browser, a browser
that fails or hangs: one line, exit 2.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framework.records import load_record
from framework.report import html, manifest, pdf
from framework.runner.record import CertificationRecord
from tests.records.samples import case, phone_record, run_record

pypdf = pytest.importorskip("pypdf")

ROOT = Path(__file__).resolve().parents[2]
DIGEST = re.compile(r"evidence sha256:([0-9a-f]{64})")
needs_browser = pytest.mark.skipif(
    not any(shutil.which(b) for b in pdf.BROWSERS), reason="no Chromium (make setup installs it)")

FIRMWARES = ("2.2.8.61", "3.4.2.21")
MODELS = ("440HD", "450HD")
ROWS = [f"t10-2/r{i}-host-ip" for i in range(1, 25)]


def make_run(d: Path) -> Path:
    """A finished run of 24 rows on 2 firmware x 2 models, with its HTML report."""
    d.mkdir(parents=True)
    phones = [phone_record(f"ph-{fw}-{m}", model=m, firmware=fw)
              for fw in FIRMWARES for m in MODELS]
    rec = CertificationRecord(d, run_record(d.name, start=0.0), phones)
    for row in ROWS:
        for fw in FIRMWARES:
            for m in MODELS:
                verdict = "failed" if (row, fw, m) == (ROWS[3], FIRMWARES[1], MODELS[0]) \
                    else "passed"
                rec.add_case(case(row, f"ph-{fw}-{m}", verdict, model=m, firmware=fw,
                                  observed=[], start=0.0))
    rec.finish()
    html.write(load_record(d), d / "certification.html")  # shows the evidence digest
    return d


def shown_digest(run: Path) -> str:
    found = DIGEST.search(re.sub(r"<[^>]+>", "", (run / "certification.html").read_text()))
    assert found, "the HTML report shows no evidence digest"
    return found.group(1)


def pages(path: Path) -> list[str]:
    return [p.extract_text() for p in pypdf.PdfReader(path).pages]


def footer_lowest(path: Path, digest: str) -> list[bool]:
    """Per page: the digest line sits below every other line (it overlaps no content)."""
    out = []
    for page in pypdf.PdfReader(path).pages:
        ys: list[tuple[float, str]] = []

        def visit(text: str, cm: list[float], tm: list[float], _f: object, _s: object,
                  ys: list[tuple[float, str]] = ys) -> None:
            if text.strip():
                ys.append((tm[4] * cm[1] + tm[5] * cm[3] + cm[5], text))

        page.extract_text(visitor_text=visit)
        foot = min((y for y, t in ys if digest in t), default=None)
        out.append(foot is not None and all(y > foot for y, _ in ys if abs(y - foot) > 0.5))
    return out


def hil(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], capture_output=True,
                          text=True, cwd=ROOT, timeout=120, env=env)


@needs_browser
def test_pdf_has_the_matrix_on_page_one_and_the_digest_on_every_page(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r1")
    out = pdf.write(run)
    assert out == run / "certification.pdf" and out.read_bytes()[:5] == b"%PDF-"
    assert not list(run.glob(".*partial"))
    text = pages(out)
    assert len(text) >= 2, "the test needs a report longer than the matrix"
    assert "<td" not in "".join(text), "the page is printed, not its source"
    first = text[0]
    assert "Matrix (firmware × model × row)" in first
    for fw in FIRMWARES:
        assert fw in first
    for m in MODELS:
        assert m in first
    for row in ROWS:  # the whole matrix, every row, is on page 1
        assert re.search(re.escape(row) + r"\s+(passed|failed)", first), row
    assert re.search(re.escape(ROWS[3]) + r"\s+passed\s+passed\s+failed\s+passed", first)
    assert "Cases" not in first.split("Matrix (firmware", 1)[1], "the cases follow on page 2"
    assert "because failed" in "".join(text[1:]), "the cases (and their details) are printed"
    digest = shown_digest(run)
    for n, page in enumerate(text, 1):
        assert f"evidence sha256:{digest}" in page, f"page {n} lacks the digest"
    assert all(footer_lowest(out, digest)), "the digest footer overlaps content on some page"


@needs_browser
def test_pdf_of_the_html_file_replaces_an_older_pdf(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r1")
    (run / "certification.pdf").write_bytes(b"old")
    out = pdf.write(run / "certification.html")
    assert out.read_bytes()[:5] == b"%PDF-"


@needs_browser
def test_cli_prints_then_lists_the_pdf_in_the_signed_manifest(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r1")
    assert hil("report", "keygen", str(tmp_path / "key")).returncode == 0
    proc = hil("report", "pdf", str(run), "--key", str(tmp_path / "key"))
    assert proc.returncode == 0, proc.stderr
    assert "signed by key" in proc.stdout and "evidence sha256:" in proc.stdout
    verified = hil("report", "verify", str(run), "--key", str(tmp_path / "key.pub"), "--json")
    assert verified.returncode == 0, verified.stdout
    result = json.loads(verified.stdout)
    envelope = json.loads((run / "MANIFEST.json").read_text())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert "certification.pdf" in {s["name"] for s in statement["subject"]}
    digest = result["evidence_digest"]
    assert shown_digest(run) == digest
    text = pages(run / "certification.pdf")
    assert "Matrix (firmware × model × row)" in text[0] and "<td" not in "".join(text)
    assert all(f"evidence sha256:{digest}" in page for page in text)
    fp = statement["predicate"]["signer"]["keyid"]
    assert all(fp[:16] in page for page in text), "every page names the signing key"
    # evidence changed behind the manifest: refused, unless --force
    (run / "extra.txt").write_text("added later")
    proc = hil("report", "pdf", str(run))
    assert proc.returncode == 1 and "added: extra.txt" in proc.stderr, proc.stderr
    proc = hil("report", "pdf", str(run), "--force")
    assert proc.returncode == 0 and "unsigned" in proc.stdout, proc.stderr


def test_no_browser_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(tmp_path / "r1")
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(pdf.PdfError, match="no Chromium to print the PDF with"):
        pdf.write(run)
    assert not (run / "certification.pdf").exists()
    proc = hil("report", "pdf", str(run), env={**os.environ, "PATH": str(empty)})
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no Chromium to print the PDF with" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_failed_print_changes_nothing_in_the_run(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r1")
    manifest.write(run)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_browser(bin_dir, "echo 'cannot print' >&2; exit 1")
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    proc = hil("report", "pdf", str(run), env={**os.environ, "PATH": str(bin_dir)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "cannot print" in proc.stderr
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert hil("report", "verify", str(run)).returncode == 0


@needs_browser
def test_relative_run_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_run(tmp_path / "r1")
    monkeypatch.chdir(tmp_path)
    out = pdf.write(Path("r1"), page=(Path("r1") / "certification.html").read_text())
    assert (tmp_path / "r1" / "certification.pdf").read_bytes()[:5] == b"%PDF-"
    assert out.is_absolute() and sorted(p.name for p in (tmp_path / "r1").glob(".*")) == []


def fake_browser(d: Path, body: str) -> str:
    exe = d / "chromium"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(0o755)
    return str(exe)


def test_failed_render_is_one_line(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r1")
    exe = fake_browser(tmp_path, "echo '[1:2:ERROR:dbus/bus.cc:405] Failed to connect' >&2\n"
                                 "echo 'ERROR: cannot open display' >&2\nexit 3")
    with pytest.raises(pdf.PdfError) as err:
        pdf.write(run, browser=exe)
    msg = str(err.value)
    assert "\n" not in msg and "exit 3" in msg and "cannot open display" in msg
    exe = fake_browser(tmp_path, "exit 0")  # exits 0 but writes nothing
    with pytest.raises(pdf.PdfError, match="wrote no PDF"):
        pdf.write(run, browser=exe)
    assert not (run / "certification.pdf").exists()


def test_hung_browser_is_ended_after_the_timeout(tmp_path: Path) -> None:
    run = make_run(tmp_path / "r1")
    exe = fake_browser(tmp_path, "sleep 60 &\nwait")
    t0 = time.monotonic()
    with pytest.raises(pdf.PdfError, match=r"did not print .* within 1 s"):
        pdf.write(run, browser=exe, timeout=1)
    assert time.monotonic() - t0 < 10


def test_missing_run_or_html_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(pdf.PdfError, match="no such run directory"):
        pdf.write(tmp_path / "nope")
    run = make_run(tmp_path / "r1")
    (run / "certification.html").unlink()
    with pytest.raises(pdf.PdfError, match=r"no certification\.html to print"):
        pdf.write(run)
