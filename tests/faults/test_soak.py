"""Flakiness soak: 200 consecutive faithful cases on the sim rig (4 phones x the 50-case
matrix, through `hil run`) give 0 failed and 0 broken; every case the core promises passes,
the others are observations. Slow (about 2 minutes): `make soak`, also in `make test-slow`.
The last measured figure is in the README ("Reliability")."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from framework.netns import have_privileges
from framework.records import load_record
from framework.runner.catalogue import ALL_CASES as CASES
from framework.sim.rigfile import write_sim_rig

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.netns, pytest.mark.slow, pytest.mark.timeout(1800),
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")]


def test_200_faithful_cases_give_no_failed_and_no_broken(tmp_path: Path,
                                                         record_property: Callable[[str, object], None]
                                                         ) -> None:
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix=f"hilt-sk{os.getpid() % 1000}",
                        phones=4)
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "run", "--rig", str(rig),
                           "--reports", str(tmp_path / "reports"), "--run-id", "soak"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1700)
    doc = load_record(tmp_path / "reports" / "soak")
    cases = doc.cases
    assert len(CASES) * 4 >= 200 and len(cases) == len(CASES) * 4, proc.stderr[-2000:]
    bad = [f"{c.phone} {c.id}: {c.verdict}: {c.reason}" for c in cases
           if c.verdict in ("failed", "broken")]
    assert bad == [], "\n".join(bad)
    for case in cases:
        promised = (case.expected or {}).get("promise") == "promised"
        assert case.verdict == ("passed" if promised else "observed"), case
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    summary = doc.summary
    record_property("soak_summary", summary)
    print(f"soak: {summary['passed']} passed, {summary['observed']} observed, "
          f"{summary['failed']} failed, {summary['broken']} broken of {summary['total']}")
