"""Issue 16 acceptance, on the wire: a phone that keeps the host's case in its URLs
(deviation ``host-case-kept``: ``AudioCodes.Lab.Example`` asked for as it was given) passes
every case under the default profile, where URLs compare by RFC 3986 6.2.2 (host names
are case-insensitive) and the difference is a note, and fails exactly the promised
host-name cases under ``hil run --switch url_compare=byte-exact``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from framework.netns import have_privileges
from framework.records import CaseResult
from framework.resolution import PhoneIdentity, PhoneSettings, get_profile, resolve
from framework.runner.catalogue import LAB_DNS_NAME, by_id
from framework.runner.options import RunOptions
from framework.runner.session import LabSession
from framework.sim.rigfile import MODELS, write_sim_rig

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")]

#: Cases whose provisioning server is the lab's mixed-case DNS name, and two by address.
NAME_CASES = ["t10-2/r2-host-name", "t10-2/r3-host-name-67-names", "t10-2/r4-http-host",
              "t10-2/r4-tftp-host", "t10-2/r5-ftp-host-67-names", "t10-2/r6-66-names",
              "t10-1/server-https-name", "t10-1/firmware-config-http-name"]
IP_CASES = ["t10-2/r2-host-ip", "t10-1/server-ftp"]


def _run(tmp: Path, tag: str, switches: tuple[str, ...]) -> dict[tuple[str, str], CaseResult]:
    tmp.mkdir(parents=True, exist_ok=True)
    rig = write_sim_rig(tmp / "rig.yaml", prefix=f"hilt-h{tag}{os.getpid() % 1000}", phones=2,
                        deviations={"ph2": ["host-case-kept"]}, boot_time_s=0.2)
    opts = RunOptions(rig_path=rig, reports_dir=tmp / "reports", settle_s=0.4,
                      boot_timeout_s=20, request_timeout_s=3, switches=switches)
    cases = [by_id(c) for c in NAME_CASES + IP_CASES]
    with LabSession(opts) as session:
        session.schedule([(c, p.name) for p in session.rig.phones for c in cases])
        return {(c.id, p.name): session.result(c.id, p.name, timeout=300)
                for p in session.rig.phones for c in cases}


def _promised(case_id: str, model: str) -> bool:
    case = by_id(case_id)
    return resolve(case.render("192.0.2.1", LAB_DNS_NAME), PhoneIdentity(model, "00908F000002"),
                   get_profile("2.2"), PhoneSettings(url_option=case.url_option)).promised


@pytest.mark.timeout(600)
def test_kept_host_case_passes_by_default_and_fails_byte_exact(tmp_path: Path) -> None:
    default = _run(tmp_path / "default", "d", ())
    assert {r.verdict for r in default.values()} <= {"passed", "observed"}, {
        k: r.reason for k, r in default.items() if r.verdict not in ("passed", "observed")}
    kept = [default[(c, "ph2")] for c in NAME_CASES]
    assert all(any("case" in n.lower() for n in (r.notes or [])) for r in kept), \
        [r.notes for r in kept]  # forgiven, and said so

    strict = _run(tmp_path / "strict", "s", ("url_compare=byte-exact",))
    model = MODELS[1 % len(MODELS)]
    failed = {c for (c, ph), r in strict.items() if ph == "ph2" and r.verdict == "failed"}
    assert failed == {c for c in NAME_CASES if _promised(c, model)}, \
        {c: strict[(c, "ph2")].reason for c in NAME_CASES}
    assert not {c for (c, ph), r in strict.items() if ph == "ph1" and r.verdict == "failed"}
    assert all(strict[(c, "ph2")].verdict == "passed" for c in IP_CASES)
