"""The proof of issue 11 on the simulated rig: two runs on one rig, each after installing a
release, and ``hil report diff`` between them shows exactly the rows the second release
broke, per model.

Release 2.2.9.0 is faithful; release 2.2.9.1 carries the catalogue deviation
``mac-case-flipped`` (sim ``release_deviations``: the phone behaves per installed
version). The oracle for "exactly" is the sim's own planner (tests/e2e), written
independently of the resolution core; the verdicts come from the wire.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from framework.netns import have_privileges
from framework.records import CertificationDocument, load_record
from framework.release.install import prepare
from framework.runner.catalogue import ALL_CASES
from tests.e2e.test_can_fail import should_fail
from tests.release.conftest import start_lab, write_release

pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(600),
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")]

ROOT = Path(__file__).resolve().parents[2]
PHONES = 2                     # ph1 440HD, ph2 405HD (write_sim_rig's model order)
CASES = ALL_CASES[:24]         # Table 10-2 and most of Table 10-1: affected and untouched rows
BUGGY = {f"ph{i}": {"2.2.9.1": ["mac-case-flipped"]} for i in range(1, PHONES + 1)}


def certify(tmp: Path, release: Path, run_id: str) -> CertificationDocument:
    session = start_lab(tmp, "d", PHONES, run_id=run_id, release_deviations=BUGGY)
    try:
        results = prepare(session, [release])
        assert {r.outcome for r in results.values()} == {"installed"}, \
            {n: r.reason for n, r in results.items()}
        session.schedule([(c, name) for name in session.lanes for c in CASES])
        for name in session.lanes:
            for c in CASES:
                session.result(c.id, name, timeout=300)
    finally:
        session.stop()
    return load_record(tmp / "reports" / run_id)


def test_diff_between_two_releases_shows_exactly_the_affected_rows(tmp_path: Path) -> None:
    good = write_release(tmp_path / "rel-2.2.9.0", "2.2.9.0", ("440HD", "405HD"))
    buggy = write_release(tmp_path / "rel-2.2.9.1", "2.2.9.1", ("440HD", "405HD"))
    a = certify(tmp_path, good, "release-2.2.9.0")
    b = certify(tmp_path, buggy, "release-2.2.9.1")

    assert a.run.release is not None and a.run.release["versions"] == ["2.2.9.0"]
    assert b.run.release is not None and b.run.release["versions"] == ["2.2.9.1"]
    assert {c.firmware for c in b.cases} == {"2.2.9.1"}
    assert {c.verdict for c in a.cases} <= {"passed", "observed"}, \
        [(c.id, c.reason) for c in a.cases if c.verdict not in ("passed", "observed")]

    proc = subprocess.run([sys.executable, "-m", "framework.cli", "report", "diff",
                           str(tmp_path / "reports" / "release-2.2.9.0"),
                           str(tmp_path / "reports" / "release-2.2.9.1"), "--json",
                           "--unverified"],  # runs of a bare LabSession: no MANIFEST.json
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 1, proc.stderr  # exit 1: some verdict changed
    changed = {(c["case"], c["model"], c["before"], c["after"])
               for c in json.loads(proc.stdout)}
    ids = {c.id for c in CASES}
    wanted = {(cid, model, "passed", "failed")
              for i, model in ((1, "440HD"), (2, "405HD"))
              for cid in should_fail("mac-case-flipped", model, f"00908F0000{i:02X}") & ids}
    assert wanted, "the case subset must contain rows the deviation affects"
    assert changed == wanted
