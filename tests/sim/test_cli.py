"""`hil sim up/status/down/fault`: readiness, teardown on signals and after a crash, errors
as one line, secrets never shown."""

from __future__ import annotations

import os
import select
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

import framework.sim.cli as sim_cli
from framework.cli import main as hil
from framework.netns import list_namespaces
from framework.sim.state import control_path, state_path
from tests.sim.conftest import needs_netns
from tests.sim.harness import PREFIX, PYTHON, ROOT, SimLabRun, phones, rig_document


def test_up_without_privileges_is_one_line_and_exit_2(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    monkeypatch.setattr(sim_cli, "have_privileges",
                        lambda: (False, "creating network namespaces needs root (run with sudo)"))
    assert hil(["sim", "up", "--rig", str(ROOT / "rigs/sim.yaml")]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("hil sim up: cannot create network namespaces: creating network namespaces "
                   "needs root (run with sudo)\n")


def test_bad_rig_is_one_line_naming_file_and_key(
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sim_cli, "have_privileges", lambda: (True, ""))
    document = rig_document(phones(1))
    document["sim"]["phones"]["ph1"]["deviations"] = ["made-up"]
    rig = tmp_path / "bad.yaml"
    rig.write_text(yaml.safe_dump(document))
    assert hil(["sim", "up", "--rig", str(rig)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"{rig}: sim.phones.ph1.deviations: ")
    assert "Traceback" not in err


def test_deviations_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    assert hil(["sim", "deviations"]) == 0
    assert "mac-case-flipped" in capsys.readouterr().out


def _namespaces() -> list[str]:
    return [n for n in list_namespaces() if n.startswith(f"{PREFIX}-")]


@pytest.mark.netns
@needs_netns
def test_eight_phone_lab_up_status_down(start_lab: Callable[..., SimLabRun],
                                        record_property: Callable[[str, object], None]) -> None:
    lab = start_lab(phones(8, ("440HD", "405HD", "420HD", "450HD")))
    record_property("hil_sim_up_seconds_8_phones", round(lab.up_seconds, 2))
    assert f"sim lab {PREFIX} up in" in lab.up_output and "8 phones" in lab.up_output
    assert lab.password not in lab.up_output and lab.community not in lab.up_output
    assert "not shown" in lab.up_output  # the generated secrets are named, never printed
    status = lab.status()
    assert status["running"] and status["ready"]
    assert len(status["phones"]) == 8 and set(status["namespaces"]) == set(_namespaces())
    state = Path(status["log"]).with_suffix(".json")
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    assert lab.password not in Path(status["log"]).read_text()
    again = lab.cli("up")
    assert again.returncode == 0 and "already up" in again.stdout
    _fault_errors_are_one_line(lab)
    lab.down()
    assert _namespaces() == [] and not state.exists()
    assert "no sim lab" in lab.cli("down").stdout


def _fault_errors_are_one_line(lab: SimLabRun) -> None:
    missing = lab.cli("fault", "dead-outlet", "on")
    assert missing.returncode == 2 and missing.stderr.strip().endswith("needs --outlet N")
    bad = lab.cli("fault", "dead-outlet", "on", "--outlet", "99")
    assert bad.returncode == 2 and "no outlet 99" in bad.stderr
    assert lab.cli("fault", "dead-outlet", "on", "--outlet", "1").returncode == 0
    assert lab.status()["pdus"]["pdu1"]["dead_outlets"] == [1]
    no_phone = lab.cli("fault", "console-dead", "on")
    assert no_phone.returncode == 2 and no_phone.stderr.strip().endswith("needs --phone NAME")
    unknown = lab.cli("fault", "no-dhcp", "on", "--phone", "nope")
    assert unknown.returncode == 2 and "'nope'" in unknown.stderr
    name = sorted(lab.status()["phones"])[0]
    assert lab.cli("fault", "console-dead", "on", "--phone", name).returncode == 0
    assert lab.cli("fault", "no-dhcp", "on", "--phone", name).returncode == 0
    assert lab.status()["phones"][name]["faults"] == ["console-dead", "no-dhcp"]
    assert lab.cli("fault", "console-dead", "off", "--phone", name).returncode == 0
    assert lab.status()["phones"][name]["faults"] == ["no-dhcp"]


@pytest.mark.netns
@needs_netns
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "killed"])
def test_lab_is_cleaned_after_a_signal_or_a_crash(start_lab: Callable[..., SimLabRun],
                                                  how: signal.Signals) -> None:
    lab = start_lab(phones(2))
    pid = lab.status()["pid"]
    pidfd = os.pidfd_open(pid)
    try:
        os.kill(pid, how)
        assert select.select([pidfd], [], [], 15)[0], f"sim lab pid {pid} did not exit"
    finally:
        os.close(pidfd)
    if how == signal.SIGINT:
        assert _namespaces() == []  # it tore itself down
        return
    left = lab.cli("status")
    assert left.returncode == 1 and "not running" in left.stderr and "leftover" in left.stderr
    assert "down" in lab.cli("down").stdout
    assert _namespaces() == []
    assert not control_path(PREFIX).exists() and not state_path(PREFIX).exists()


def test_serve_reports_a_bad_rig_through_the_pipe(tmp_path: Path) -> None:
    """The lab process tells `hil sim up` what went wrong (here: the rig) and exits 2."""
    read_end, write_end = os.pipe()
    proc = subprocess.run([PYTHON, "-m", "framework.sim", "serve", "--rig",
                           str(tmp_path / "missing.yaml"), "--ready-fd", str(write_end)],
                          pass_fds=(write_end,), cwd=ROOT, capture_output=True, timeout=60)
    os.close(write_end)
    message = os.read(read_end, 4096).decode()
    os.close(read_end)
    if proc.returncode == 2 and "cannot create network namespaces" in proc.stderr.decode():
        pytest.skip("needs privileges")
    assert proc.returncode == 2
    assert message == f"error: {tmp_path / 'missing.yaml'}: rig file not found\n"
