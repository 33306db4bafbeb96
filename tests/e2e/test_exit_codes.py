"""`hil run`'s exit codes on the wire (issue 17): 0 all passed or observed, 1 a case failed,
3 the rig was broken (none failed), 2 bad input; and the run's junit.xml, read with
junitparser as a CI server would, holds the broken cases as errors under their phone's
suite with the phone's properties.

One simulated rig of three phones: ph1 runs deviant firmware (it never requests its
configuration file), ph2's PDU outlet is dead (power-cycle trigger: a rig fault), ph3 is
faithful. Each run picks its phones and a case or two.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from framework.netns import have_privileges
from framework.sim.rigfile import write_sim_rig

ROOT = Path(__file__).resolve().parents[2]
PREFIX = f"hilt-xc{os.getpid() % 1000}"
pytestmark = [pytest.mark.netns, pytest.mark.timeout(900),
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")]


def hil(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sim_rig(tmp_path_factory.mktemp("exit") / "rig.yaml",
                         prefix=PREFIX, phones=3, boot_time_s=0.2,
                         deviations={"ph1": ["config-never-requested"]}, dead_outlets=[2],
                         trigger="power-cycle")


def run(rig: Path, run_id: str, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    reports = rig.parent / "reports"
    proc = hil("run", "--rig", str(rig), "--reports", str(reports), "--run-id", run_id,
               "--settle", "0.4", "--boot-timeout", "20", "--request-timeout", "3", *args)
    return proc, reports / run_id


def test_failed_broken_and_observed_exit_1_and_junit(rig: Path) -> None:
    proc, run_dir = run(rig, "mixed", "--phones", "ph1,ph2",
                        "-k", "r2-host-ip or 160-whitespace")
    out = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 1, out
    assert (run_dir / "pytest-junit.xml").exists()  # pytest's own, out of the way
    suites = {s.name: s for s in JUnitXml.fromfile(str(run_dir / "junit.xml"))}
    assert set(suites) == {"ph1 440HD", "ph2 405HD"}, out
    ph2 = suites["ph2 405HD"]
    props = {p.name: p.value for p in ph2.properties()}
    assert props["model"] == "405HD" and props["mac"] == "00908F000002", props
    assert props["firmware"] and props["rig"] == PREFIX, props
    results = [tc.result for tc in ph2]
    assert results and all(len(r) == 1 and isinstance(r[0], Error) for r in results), results
    ph1 = {tc.name.split(":")[0]: tc.result for tc in suites["ph1 440HD"]}
    assert isinstance(ph1["t10-2/r2-host-ip"][0], Failure), ph1
    assert isinstance(ph1["robust/160-whitespace"][0], Skipped), ph1
    assert "observed" in (ph1["robust/160-whitespace"][0].message or "")


def test_broken_only_exits_3(rig: Path) -> None:
    proc, _ = run(rig, "broken", "--phones", "ph2", "-k", "r2-host-ip")
    assert proc.returncode == 3, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_all_passed_exits_0(rig: Path) -> None:
    proc, run_dir = run(rig, "ok", "--phones", "ph3", "-k", "r2-host-ip or 160-whitespace")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (suite,) = JUnitXml.fromfile(str(run_dir / "junit.xml"))
    assert suite.errors == 0 and suite.failures == 0 and suite.tests >= 2


@pytest.mark.parametrize("args", [("--phones", "ph9"), ("--rig", "/nonexistent/rig.yaml"),
                                  ("--settle", "soon")])
def test_bad_input_exits_2(rig: Path, args: tuple[str, ...]) -> None:
    proc = hil("run", "--rig", str(rig), *args, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.strip().count("\n") == 0, proc.stderr
