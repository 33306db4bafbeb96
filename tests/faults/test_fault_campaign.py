"""Trustworthy under faults: each rig fault, injected while a run is going, ends as *broken*
with a reason that names it; the other phones' cases are unaffected; the run goes on; a
phone that breaks is quarantined and listed as such in the record.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from framework.errors import RigFault
from framework.netns import Netns, have_privileges
from framework.records import CaseResult, load_record
from framework.runner.catalogue import by_id
from framework.runner.options import ROOT, RunOptions
from framework.runner.phones import DriverLink
from framework.runner.session import LabSession
from framework.sim.rigfile import write_sim_rig

pytestmark = [pytest.mark.netns, pytest.mark.timeout(600),
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")]
CASES = [by_id("t10-2/r2-host-ip"), by_id("t10-2/r2-host-name"), by_id("t10-1/server-ftp")]
TAG = os.getpid() % 1000


def options(rig: Path, tmp: Path, **kw: Any) -> RunOptions:
    return RunOptions(rig_path=rig, reports_dir=tmp / "reports", settle_s=0.3,
                      boot_timeout_s=kw.pop("boot_timeout_s", 8), request_timeout_s=3, **kw)


def sim_cli(rig: Path, *args: str) -> None:
    subprocess.run([sys.executable, "-m", "framework.cli", "sim", *args, "--rig", str(rig)],
                   cwd=ROOT, check=True, capture_output=True, timeout=60)


def verdicts(results: dict[tuple[str, str], CaseResult], phone: str) -> list[str]:
    return [r.verdict for (c, p), r in sorted(results.items(), key=lambda kv: kv[1].start)
            if p == phone]


def reasons(results: dict[tuple[str, str], CaseResult], phone: str) -> str:
    return " | ".join(r.reason for (c, p), r in results.items() if p == phone)


def test_phone_faults_mid_run_are_broken_and_quarantined(tmp_path: Path) -> None:
    """ph1 control; ph2 outlet stops switching; ph3 gets no DHCP answer; ph4 loses power
    in the middle of a transfer; ph5 never boots; ph6's serial console dies; ph7 boots but
    its DHCP client stops sending."""
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix=f"hilt-fa{TAG}", phones=7,
                        boot_time_s=0.2, boot_times={"ph5": 120.0})
    with LabSession(options(rig, tmp_path, trigger="power-cycle")) as session:
        first_done: dict[str, bool] = {}
        cut_armed = threading.Event()

        def inject(result: CaseResult) -> None:
            phone = result.phone
            if first_done.setdefault(phone, True) is not True:
                return
            first_done[phone] = False
            if phone == "ph2":
                sim_cli(rig, "fault", "dead-outlet", "on", "--outlet", "2")
            elif phone == "ph3":
                session.dhcp.ignore(session.lanes["ph3"].spec.mac_colon)
            elif phone == "ph4":
                # A large configuration makes the transfer long enough to cut in the middle.
                session.services.content.serve("/00908F000004.cfg", b"#" * 4_000_000,
                                               protocol="tftp")
                cut_armed.set()
            elif phone == "ph6":
                sim_cli(rig, "fault", "console-dead", "on", "--phone", "ph6")
            elif phone == "ph7":
                sim_cli(rig, "fault", "no-dhcp", "on", "--phone", "ph7")

        def cut_power(record: Any) -> None:
            if cut_armed.is_set() and record.client_ip == "192.0.2.14" \
                    and record.path.endswith(".img"):
                cut_armed.clear()
                lane = session.lanes["ph4"]
                assert isinstance(lane.link, DriverLink)
                threading.Thread(target=lane.link.driver.power.off, daemon=True).start()

        session.services.log.subscribe(cut_power)
        session.schedule([(c, p) for p in session.lanes for c in CASES], on_judged=inject)
        results = {(c.id, p): session.result(c.id, p, timeout=300)
                   for p in session.lanes for c in CASES}
        assert session.record is not None
        doc = session.record.document()
    assert verdicts(results, "ph1") == ["passed"] * 3, reasons(results, "ph1")
    assert verdicts(results, "ph2")[0] == "passed"
    assert set(verdicts(results, "ph2")[1:]) == {"broken"}
    assert "power" in reasons(results, "ph2").lower() or "boot" in reasons(results, "ph2")
    assert verdicts(results, "ph3")[0] == "passed"
    assert set(verdicts(results, "ph3")[1:]) == {"broken"}
    assert "DHCP" in reasons(results, "ph3")
    assert verdicts(results, "ph4")[0] == "passed"
    assert set(verdicts(results, "ph4")[1:]) == {"broken"}
    assert "lost power" in reasons(results, "ph4")
    assert verdicts(results, "ph5") == ["broken"] * 3
    assert "quarantined" in reasons(results, "ph5")
    assert verdicts(results, "ph6")[0] == "passed"
    assert set(verdicts(results, "ph6")[1:]) == {"broken"}
    assert "console" in reasons(results, "ph6")
    assert verdicts(results, "ph7")[0] == "passed"
    assert set(verdicts(results, "ph7")[1:]) == {"broken"}
    assert "no DHCP DISCOVER from the phone" in reasons(results, "ph7")
    states = {p.name: p.state for p in doc.phones}
    assert states == {"ph1": "ok", **{f"ph{n}": "quarantined" for n in range(2, 8)}}
    assert not any(r.verdict == "failed" for r in results.values())


def test_lab_service_and_pdu_faults_name_the_service(tmp_path: Path) -> None:
    """DNS stops mid-run: cases that need a name are broken naming DNS, cases by IP still
    pass. Then the PDU stops answering: a power-cycle case is broken naming the PDU."""
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix=f"hilt-fb{TAG}", phones=2,
                        boot_time_s=0.2)
    cases = [by_id("t10-2/r2-host-ip"), by_id("t10-2/r2-host-name"), by_id("t10-2/r4-http-ip")]
    with LabSession(options(rig, tmp_path)) as session:
        by_ip = session.run_case(session.lanes["ph1"], cases[0])
        session.services.dns.stop()
        by_name = session.run_case(session.lanes["ph2"], cases[1])
        by_ip_again = session.run_case(session.lanes["ph1"], cases[2])
        sim_cli(rig, "fault", "pdu-unreachable", "on")
        session.options.trigger = "power-cycle"
        no_pdu = session.run_case(session.lanes["ph1"], cases[0])
    assert by_ip.verdict == "passed"
    assert by_name.verdict == "broken" and "lab DNS" in by_name.reason
    assert by_ip_again.verdict == "passed", by_ip_again.reason
    assert no_pdu.verdict == "broken" and "pdu1" in no_pdu.reason


def test_start_up_faults_are_one_clear_rig_fault(tmp_path: Path) -> None:
    """The DHCP or TFTP port already taken, the lab interface missing."""
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix=f"hilt-fc{TAG}", phones=1,
                        boot_time_s=0.2)
    sim_cli(rig, "up")
    try:
        with Netns(f"hilt-fc{TAG}-lab").entered():
            dhcpd = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # another DHCP daemon
            squatter = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        dhcpd.bind(("0.0.0.0", 67))
        with pytest.raises(RigFault, match=r"DHCP server cannot start on br-lab.*67"):
            LabSession(options(rig, tmp_path)).start()
        dhcpd.close()
        squatter.bind(("192.0.2.1", 69))
        with pytest.raises(RigFault, match=r"provisioning services cannot start.*69|TFTP"):
            LabSession(options(rig, tmp_path)).start()
        squatter.close()
        text = rig.read_text().replace("interface: br-lab", "interface: br-nope")
        (tmp_path / "bad.yaml").write_text(text)
        with pytest.raises(RigFault, match="lab interface 'br-nope'"):
            LabSession(options(tmp_path / "bad.yaml", tmp_path)).start()
    finally:
        sim_cli(rig, "down")


def test_wrong_console_password_quarantines_only_that_phone(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix=f"hilt-fd{TAG}", phones=2,
                        boot_time_s=0.2, consoles={"ph2": "ssh"},
                        password_envs={"ph2": "HILT_FD_PH2_PASSWORD"})
    sim_cli(rig, "up")  # the sim takes ph2's password from the secrets file...
    try:
        monkeypatch.setenv("HILT_FD_PH2_PASSWORD", "not-the-password")  # ...we try another
        with LabSession(options(rig, tmp_path)) as session:
            session.schedule([(CASES[0], "ph1"), (CASES[0], "ph2")])
            ok = session.result(CASES[0].id, "ph1", timeout=120)
            bad = session.result(CASES[0].id, "ph2", timeout=120)
            run_dir = session.run_dir
        assert ok.verdict == "passed"
        assert bad.verdict == "broken" and "quarantined" in bad.reason
        assert "auth" in bad.reason.lower() or "password" in bad.reason.lower()
        assert "not-the-password" not in (run_dir / "certification.json").read_text()
        doc = load_record(run_dir)
        assert {p.name: p.state for p in doc.phones}["ph2"] == "quarantined"
    finally:
        sim_cli(rig, "down")
