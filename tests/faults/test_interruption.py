"""Interruption: Ctrl-C tears everything down and leaves a valid record; after kill -9 the
finished cases are still in the record and `hil run --resume` runs only what is missing."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from framework.netns import have_privileges, list_namespaces
from framework.records import load_record
from framework.sim.rigfile import write_sim_rig

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.netns, pytest.mark.timeout(600),
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")]
SELECT = "r2-host or r4-http or server-ftp or precedence"


def start_run(rig: Path, reports: Path, *extra: str) -> tuple[subprocess.Popen[str],
                                                              queue.Queue[str]]:
    proc = subprocess.Popen([sys.executable, "-m", "framework.cli", "run", "--rig", str(rig),
                             "--reports", str(reports), "--settle", "0.3", "-k", SELECT, *extra],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stderr],  # type: ignore[union-attr]
                     daemon=True).start()
    return proc, lines


def wait_cases(lines: queue.Queue[str], n: int, timeout: float = 180) -> None:
    """The live progress lines (one per finished case) are the event."""
    done = 0
    while done < n:
        line = lines.get(timeout=timeout)
        if line.lstrip().startswith("[") and "/" in line.split("]")[0]:
            done += 1


def test_ctrl_c_tears_down_and_keeps_a_valid_record(tmp_path: Path) -> None:
    prefix = f"hilt-fi{os.getpid() % 1000}"
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix=prefix, phones=2, boot_time_s=0.2)
    proc, lines = start_run(rig, tmp_path / "reports", "--run-id", "ctrlc")
    wait_cases(lines, 3)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    doc = load_record(tmp_path / "reports" / "ctrlc")
    assert doc.run.status == "interrupted"
    assert len(doc.cases) >= 3 and doc.summary["total"] == len(doc.cases)
    assert all(c.verdict in ("passed", "observed") for c in doc.cases)
    assert not [n for n in list_namespaces() if n.startswith(prefix)], "namespaces left behind"


def test_kill_9_then_resume_runs_only_what_is_missing(tmp_path: Path) -> None:
    prefix = f"hilt-fk{os.getpid() % 1000}"
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix=prefix, phones=2, boot_time_s=0.2)
    run_dir = tmp_path / "reports" / "killed"
    try:
        proc, lines = start_run(rig, tmp_path / "reports", "--run-id", "killed")
        wait_cases(lines, 3)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        before = {c.key: c.start for c in load_record(run_dir).cases}
        assert len(before) >= 3
        proc, lines = start_run(rig, tmp_path / "reports", "--resume", str(run_dir))
        assert proc.wait(timeout=300) == 0
        doc = load_record(run_dir)
        after = {c.key: c.start for c in doc.cases}
        assert len(doc.cases) == len(after), "a case ran twice"
        for key, start in before.items():
            assert after[key] == start, f"{key} was run again"
        assert len(after) > len(before)
        assert doc.summary["failed"] == 0 and doc.summary["broken"] == 0
    finally:
        subprocess.run([sys.executable, "-m", "framework.cli", "sim", "down", "--rig", str(rig)],
                       cwd=ROOT, capture_output=True, timeout=60)
