"""A foreign DHCP server plugged into the lab network mid-run breaks the cases it answers.

The lab session starts on a clean simulated bench (the start-up probe finds nothing), its
first case passes; then busybox udhcpd with its defaults (it offers 2 s after a DISCOVER,
after its ARP check) appears on the lab bridge. From then on it answers the phone's
DISCOVERs next to our server: the cases in which its answers reach the phone are *broken*
(a rig fault, never the phone's failure) and the reason names its address and MAC; the
case before it is not touched.

Needs the runner's integration of framework/dhcp/watch.py (LabSession starts a
ForeignDhcpWatch and asks it per case).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from framework.netns import Netns, have_privileges
from framework.records import CaseResult
from framework.runner.catalogue import ALL_CASES, by_id
from framework.runner.options import RunOptions
from framework.runner.session import LabSession
from framework.sim.rigfile import write_sim_rig
from tests.dhcp.foreign_servers import Udhcpd, have

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces"),
              pytest.mark.skipif(not have("busybox"), reason="no busybox")]

FOREIGN_IP = "192.0.2.99"
FOREIGN_MAC = "02:00:00:00:99:01"
#: Enough cases that the run outlasts the server's 2 s answers (a case takes ~0.5 s here).
CASES = [c.id for c in ALL_CASES[:12]]


def _plug_in(lab: Netns, ns: Netns) -> None:
    """A namespace with eth0 on the sim's lab bridge: a host plugged into the lab switch."""
    ns.create()
    port = f"rg{os.getpid() % 10000}"
    lab.ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns.name)
    ns.ip("link", "set", "eth0", "address", FOREIGN_MAC)
    lab.ip("link", "set", port, "master", "br-lab")
    lab.ip("link", "set", port, "up")
    ns.ip("link", "set", "eth0", "up")


@pytest.mark.timeout(300)
def test_a_foreign_server_started_mid_run_breaks_the_cases_it_answers(tmp_path: Path) -> None:
    prefix = f"hilt-rogue-s{os.getpid() % 1000}"
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix=prefix, phones=1, boot_time_s=0.2)
    opts = RunOptions(rig_path=rig, reports_dir=tmp_path / "reports", settle_s=0.4,
                      boot_timeout_s=20, request_timeout_s=3)
    foreign_ns = Netns(f"{prefix}-x")
    started: dict[str, Any] = {}
    try:
        with LabSession(opts) as session:
            phone = session.rig.phones[0].name
            lab = Netns(session.rig.lab.netns or "")

            def after_first_case(entry: CaseResult) -> None:
                if entry.id == CASES[0] and "server" not in started:
                    _plug_in(lab, foreign_ns)
                    started["server"] = Udhcpd(foreign_ns, FOREIGN_IP,
                                               ("192.0.2.150", "192.0.2.160"),
                                               tmp_path / "udhcpd").__enter__()

            session.schedule([(by_id(c), phone) for c in CASES], on_judged=after_first_case)
            results = [session.result(c, phone, timeout=240) for c in CASES]
    finally:
        if "server" in started:
            started["server"].__exit__()
        foreign_ns.delete()
    console = started["server"].console if "server" in started else []
    first, after = results[0], results[1:]
    assert first.verdict in ("passed", "observed"), first.reason
    broken = [r for r in after if r.verdict == "broken"]
    assert broken, (f"no case broken by the foreign server: {[r.verdict for r in after]}; "
                    f"udhcpd said {console}")
    for r in broken:
        assert f"foreign DHCP server {FOREIGN_IP} ({FOREIGN_MAC})" in r.reason, r.reason
    assert not [r for r in after if r.verdict == "failed"], \
        [(r.id, r.verdict, r.reason) for r in after]
