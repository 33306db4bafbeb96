"""`hil rig check` against the simulated bench: healthy, then each kind of fault it must see."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from framework.bench.health import HealthReport, check_bench
from framework.cli import main
from framework.netns import have_privileges
from framework.rig import parse_rig
from tests.rig.sim_bench import running_sim, sim_rig_text

pytestmark = pytest.mark.netns

PREFIX = "hilt-rh"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    ok, why = have_privileges()
    if not ok:
        pytest.skip(why)
    workdir = tmp_path_factory.mktemp("sim")
    with pytest.MonkeyPatch.context() as mp, running_sim(workdir, PREFIX, phones=2) as rig:
        mp.setenv("HIL_SECRETS_FILE", str(workdir / "secrets.env"))
        yield rig


def table(report: HealthReport) -> dict[tuple[str, str], tuple[str, str]]:
    return {(i.device, i.check): (i.level, i.detail) for i in report.items}


def test_healthy_sim_bench_through_the_cli(sim: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["rig", "check", "--rig", str(sim), "--log-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert re.search(r"^healthy in \d+\.\d s; console logs in ", out, re.MULTILINE), out
    for text in ("outlet 1 (ph1)", "440HD 00908F000001", "405HD 00908F000002"):
        assert text in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ph1.console.log", "ph2.console.log",
                                                          "rig-check.log"]


def test_each_check_is_reported(sim: Path, tmp_path: Path) -> None:
    report = check_bench(parse_rig(sim.read_text()), log_dir=tmp_path)
    assert report.healthy
    rows = table(report)
    level, detail = rows.pop(("lab br-lab", "DHCP server (for the check)"))
    assert level == "ok" and detail.startswith("served the rig's 2 phones their fixed addresses")
    assert rows == {
        ("PDU pdu1", "outlet 1 (ph1)"): ("ok", "on"),
        ("PDU pdu1", "outlet 2 (ph2)"): ("ok", "on"),
        ("phone ph1", "serial console, login, /etc/release"): ("ok", "440HD 00908F000001 "
                                                                     "firmware 2.2.8.61"),
        ("phone ph1", "ssh console, login, /etc/release"): ("ok", "440HD 00908F000001 "
                                                                  "firmware 2.2.8.61"),
        ("phone ph2", "serial console, login, /etc/release"): ("ok", "405HD 00908F000002 "
                                                                     "firmware 2.2.8.61"),
        ("phone ph2", "ssh console, login, /etc/release"): ("ok", "405HD 00908F000002 "
                                                                  "firmware 2.2.8.61"),
    }


def test_wrong_firmware_and_wrong_community_are_unhealthy(
        sim: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HILT_R_WRONG_COMMUNITY", "not-the-community")
    data = yaml.safe_load(sim_rig_text(PREFIX, 2, ph2={"firmware": "2.2.8.70"}))
    data["pdus"][0].update(community={"env": "HILT_R_WRONG_COMMUNITY"}, timeout_s=0.3,
                           retries=0)
    rig_file = tmp_path / "wrong.yaml"
    rig_file.write_text(yaml.safe_dump(data))
    report = check_bench(parse_rig(rig_file.read_text()), log_dir=tmp_path / "a")
    rows = table(report)
    assert rows[("phone ph2", "serial console, identity")] == (
        "fail", "/etc/release reports firmware 2.2.8.61 (rig says 2.2.8.70)")
    # a PDU that never answers is one problem, not one per outlet
    level, detail = rows[("PDU pdu1", "outlets 1 (ph1), 2 (ph2)")]
    assert level == "fail" and detail.startswith(
        "PDU pdu1 (apc-snmp 192.0.2.250:161) outlet 1: state failed after 1 attempt: SNMP GET")
    assert "not-the-community" not in detail
    assert rows[("phone ph1", "serial console, login, /etc/release")][0] == "ok"
    assert report.unhealthy_count == 3  # the PDU, ph2 on serial and on SSH
    assert main(["rig", "check", "--rig", str(rig_file), "--log-dir", str(tmp_path / "b"),
                 "--timeout", "5"]) == 1
    captured = capsys.readouterr()
    assert "UNHEALTHY: 3 failed" in captured.out
    assert captured.err.startswith("hil: error: 3 of 6 checks failed")


def test_bench_that_is_not_up(tmp_path: Path) -> None:
    rig = parse_rig(sim_rig_text("hilt-rh-none", 1))
    report = check_bench(rig, log_dir=tmp_path)
    assert table(report) == {("lab hilt-rh-none-lab", "network namespace"): (
        "fail", "network namespace 'hilt-rh-none-lab' does not exist (is the simulated bench "
                "up? `hil sim up`)")}
