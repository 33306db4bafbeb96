"""Verdicts that hold under timing: late requests and a second provisioning cycle.

On the simulated rig, with the virtual firmware's timing deviations (framework/sim):
``late-request`` fetches the configuration once more, 1.5 s (above the 0.4 s settle
window) after its cycle; ``reboot-after-config`` restarts after applying its configuration
and provisions again. The runner must fail exactly the cases that caused a late request,
with a "late request" reason naming that case's own URL, never the next case; and it must
follow and judge both cycles of a phone that reboots, also when that phone has only an
SSH console (the restart ends the session, shows nothing, and its boot outlasts the settle
window, so the rig check meets the phone mid-boot: a restart, not a dead console).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from framework.netns import have_privileges
from framework.records import CaseResult
from framework.runner.catalogue import by_id
from framework.runner.options import RunOptions
from framework.runner.session import LabSession
from framework.sim.rigfile import write_sim_rig

pytestmark = [pytest.mark.netns, pytest.mark.timeout(600),
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")]

LATE_S = 1.5
SETTLE_S = 0.4
SLOW_BOOT_S = 2.0  # ph4's boot: restart to DISCOVER, well above the settle window
PHONES = ("ph1", "ph2", "ph3", "ph4")
# Consecutive cases ask for different configuration files, so a late request names the
# case that caused it; the last one is the lane's last case (the tail after the lane).
CASES = [by_id("t10-2/r3-host-ip-67-names"), by_id("t10-2/r2-host-ip"),
         by_id("t10-1/firmware-config-http"), by_id("t10-1/server-ftp")]


def run(tmp: Path) -> tuple[dict[tuple[str, str], CaseResult], Path]:
    rig = write_sim_rig(tmp / "rig.yaml", prefix=f"hilt-tm{os.getpid() % 1000}", phones=4,
                        boot_time_s=0.2,
                        deviations={"ph2": ["late-request"], "ph3": ["reboot-after-config"],
                                    "ph4": ["reboot-after-config"]},
                        late_request_s={"ph2": LATE_S}, consoles={"ph4": "ssh"},
                        boot_times={"ph4": SLOW_BOOT_S})
    # A late repeat is judged by a lab convention (ground ``late``): this run judges lab
    # grounds; under the default profile it is recorded, not judged (tests/runner).
    opts = RunOptions(rig_path=rig, reports_dir=tmp / "reports", settle_s=SETTLE_S,
                      boot_timeout_s=20, request_timeout_s=4,
                      switches=("judged_grounds=manual,field,lab",))
    with LabSession(opts) as session:
        session.schedule([(c, p) for p in PHONES for c in CASES])
        results = {(c.id, p): session.result(c.id, p, timeout=300)
                   for p in PHONES for c in CASES}
        run_dir = session.run_dir
    return results, run_dir


def test_late_requests_fail_their_own_case_and_a_reboot_is_judged_on_both_cycles(
        tmp_path: Path) -> None:
    results, run_dir = run(tmp_path)
    broken = {k: r.reason for k, r in results.items() if r.verdict == "broken"}
    assert not broken, broken

    # the faithful control: nothing late, one cycle per case
    for c in CASES:
        r = results[(c.id, "ph1")]
        assert r.verdict == "passed" and r.cycles == 1 and r.late is None, r.reason

    # late-request: every case fails for its own late request, and only for it
    for c in CASES:
        r = results[(c.id, "ph2")]
        assert r.expected is not None and r.late is not None, (c.id, r.reason)
        config_url = r.expected["config_url"]
        assert r.verdict == "failed", (c.id, r.reason)
        assert r.reason.startswith(f"late request {config_url} at +"), (c.id, r.reason)
        assert [o.url for o in r.late] == [config_url], (c.id, r.late)
        offset = r.late[0].offset_s
        assert offset is not None
        first = max(o.offset_s for o in r.observed if o.url == config_url
                    and o.offset_s is not None and o not in r.late)
        assert offset - first >= LATE_S - 0.3, (c.id, first, offset)
        assert "unexpected request" not in r.reason, (c.id, r.reason)
        late_files = [e for e in r.evidence if e.kind == "late-requests"]
        assert len(late_files) == 1
        lines = (run_dir / late_files[0].path).read_text().splitlines()
        # the raw records, protocol chatter (an FTP login) included
        assert [u for x in lines if (u := json.loads(x)["url"])] == [config_url]

    # the record holds the amended verdicts (what every rendering reads)
    doc = json.loads((run_dir / "certification.json").read_text())
    recorded = {(c["id"], c["phone"]): c["verdict"] for c in doc["cases"]}
    assert {recorded[(c.id, "ph2")] for c in CASES} == {"failed"}
    assert doc["summary"]["failed"] == len(CASES) and doc["summary"]["total"] == 4 * len(CASES)

    # reboot-after-config: two cycles per case, each judged, both as expected
    for c in CASES:
        r = results[(c.id, "ph3")]
        assert r.verdict == "passed", (c.id, r.reason)
        assert r.cycles == 2 and r.ack_at is not None and len(r.ack_at) == 2, (c.id, r.cycles)
        assert "2 DHCP cycles" in r.reason
        assert r.expected is not None
        urls = [o.url for o in r.observed if o.url]
        expected = [u for u in (r.expected["firmware_url"], r.expected["config_url"]) if u]
        assert urls == expected * 2, (c.id, urls)
        console = [e for e in r.evidence if e.kind == "console-log"]
        assert console and "Restarting system." in (run_dir / console[0].path).read_text()

    # the same restart on a phone with only an SSH console and a slow boot: judged on both
    # cycles, never broken (the rig check awaited the restart's DISCOVER and its SSH server)
    for c in CASES:
        r = results[(c.id, "ph4")]
        assert r.verdict == "passed", (c.id, r.reason)
        assert r.cycles == 2, (c.id, r.cycles, r.reason)
        gap = r.ack_at[1] - r.ack_at[0] if r.ack_at else 0.0
        assert gap >= SLOW_BOOT_S, (c.id, r.ack_at)
