"""Safety: no configured secret in any artefact of a run; strangers get nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from framework.netns import have_privileges
from framework.rig import load_rig
from framework.sim.rigfile import write_sim_rig

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.netns, pytest.mark.timeout(600),
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")]


def test_no_secret_in_any_artefact_of_a_run(tmp_path: Path) -> None:
    prefix = f"hilt-fs{os.getpid() % 1000}"
    rig_path = write_sim_rig(tmp_path / "rig.yaml", prefix=prefix, phones=2, boot_time_s=0.2)
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "run", "--rig", str(rig_path),
                           "--reports", str(reports), "--run-id", "scan", "--settle", "0.3",
                           "-k", "r2-host or t10-1"], cwd=ROOT, capture_output=True, text=True,
                          timeout=500)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rig = load_rig(rig_path)
    secrets = {rig.phones[0].credentials.password.resolve(), rig.pdus[0].community.resolve()}
    assert all(len(s) >= 8 for s in secrets)
    artefacts = [p for p in (reports / "scan").rglob("*") if p.is_file()]
    artefacts += [Path(f"/run/hil/sim-{prefix}.log"), Path(f"/run/hil/sim-{prefix}.json")]
    scanned = 0
    for path in artefacts:
        if not path.exists():
            continue
        data = path.read_bytes()
        scanned += 1
        for secret in secrets:
            assert secret.encode() not in data, f"a configured secret appears in {path}"
    assert scanned >= 10  # the record, consoles, evidence, pcaps, sim log...
    kinds = {p.suffix for p in artefacts}
    assert {".json", ".log", ".pcap", ".jsonl", ".html"} <= kinds
    for stream in (proc.stdout, proc.stderr):
        for secret in secrets:
            assert secret not in stream
