"""Issue 18's acceptance on a real (simulated) run: `hil run --sign` on a sim rig, the PDF
of that run read back as text, the signed manifest verified, the bundle moved and verified,
and one changed byte caught."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest

from framework.netns import have_privileges
from framework.sim.rigfile import write_sim_rig

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.netns, pytest.mark.timeout(600),
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces"),
              pytest.mark.skipif(shutil.which("chromium") is None, reason="make setup installs chromium")]


def hil(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_a_signed_sim_run_prints_verifies_and_bundles(tmp_path: Path) -> None:
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix=f"hilt-ce{os.getpid() % 1000}",
                        phones=1, boot_time_s=0.2)
    key = tmp_path / "keys" / "lab"
    assert hil("report", "keygen", str(key)).returncode == 0
    pub = next(p for p in key.parent.iterdir() if p.name != key.name and "pub" in p.name)
    reports = tmp_path / "reports"
    run = hil("run", "--rig", str(rig), "--reports", str(reports), "--run-id", "cert",
              "--settle", "0.6", "--sign", str(key), "-k", "r2-host or precedence")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    run_dir = reports / "cert"
    pdf = hil("report", "pdf", str(run_dir), "--key", str(key))
    assert pdf.returncode == 0, pdf.stdout + pdf.stderr
    pages = [p.extract_text() for p in pypdf.PdfReader(run_dir / "certification.pdf").pages]
    digest = re.search(r"evidence sha256:([0-9a-f]{64})", pages[0])
    assert digest, pages[0][:500]
    assert all(f"evidence sha256:{digest[1]}" in page for page in pages)
    assert "Matrix" in pages[0] and "t10-2/r2-host-ip passed" in pages[0]  # the matrix, as text
    ok = hil("report", "verify", str(run_dir), "--key", str(pub))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bundle = hil("report", "bundle", str(run_dir), "-o", str(tmp_path / "cert.tar.gz"))
    assert bundle.returncode == 0, bundle.stdout + bundle.stderr
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(str(tmp_path / "cert.tar.gz"), moved / "cert.tar.gz")
    assert hil("report", "verify", str(moved / "cert.tar.gz"), "--key", str(pub)).returncode == 0
    evidence = next(p for p in (run_dir / "evidence").rglob("requests.jsonl"))
    evidence.write_bytes(evidence.read_bytes() + b" ")
    bad = hil("report", "verify", str(run_dir), "--key", str(pub))
    assert bad.returncode == 1
    assert f"changed: {evidence.relative_to(run_dir)}" in bad.stdout + bad.stderr
