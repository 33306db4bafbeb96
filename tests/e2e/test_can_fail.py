"""Proof that the framework can fail: deviant virtual firmware on the simulated rig.

With no deviation every case passes (or is an observation); with each catalogue deviation
switched on, exactly the cases that should catch it fail: the promised cases on which the
deviant firmware's requests differ from the faithful firmware's. A phone whose PDU outlet
is dead yields *broken*, never *failed*.

The oracle is the sim's own planner (framework.sim.firmware), which is written
independently of the resolution core; the verdicts come from the wire.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from framework.netns import have_privileges
from framework.records import CaseResult
from framework.resolution import PhoneIdentity, PhoneSettings, get_profile, resolve
from framework.runner.catalogue import ALL_CASES, LAB_DNS_NAME, Case, by_id
from framework.runner.failures import CONDITION_CASES, HTTPS_REFUSAL_CASES
from framework.runner.options import RunOptions
from framework.runner.session import LabSession
from framework.sim.firmware import DEVIATIONS, DHCP_DEVIATIONS, REQUEST_DEVIATIONS, Faithful400HD
from framework.sim.rigfile import MODELS, write_sim_rig

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")]

LAB_IP = "192.0.2.1"
PER_RUN = 7  # deviant phones per sim lab; ph1 stays faithful as the control
NAMES = sorted(DEVIATIONS)
GROUPS = [NAMES[i:i + PER_RUN] for i in range(0, len(NAMES), PER_RUN)]


def _mac(i: int) -> str:
    return f"00908F0000{i:02X}"


def _plan(deviations: set[str], case: Case, model: str, mac: str) -> list[tuple[str, str]]:
    fw = Faithful400HD(deviations=deviations)
    settings = {"provisioning/url_option_value": str(case.url_option)}
    plan = fw.plan(case.render(LAB_IP, LAB_DNS_NAME), model=model, mac=mac, settings=settings)
    # What the lab can see: SIP PnP is not recorded, and the redirect server's name gets
    # NXDOMAIN from the lab DNS, so of a redirect attempt only its DNS query shows.
    return [(r.purpose, r.host if r.purpose == "redirect" else r.url) for r in plan.requests
            if r.purpose != "sip-pnp"]


_DEFAULT_PORTS = {"http": 80, "https": 443, "ftp": 21, "tftp": 69}


def _equivalent(plan: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The plan as the verdict compares it by default (RFC 3986 6.2.2/6.2.3, issue 16):
    scheme and host without case, a default port as no port."""
    out = []
    for purpose, url in plan:
        parts = urlsplit(url)
        if parts.scheme and parts.hostname:
            port = "" if parts.port in (None, _DEFAULT_PORTS.get(parts.scheme.lower())) \
                else f":{parts.port}"
            url = f"{parts.scheme.lower()}://{parts.hostname}{port}{parts.path}"
        out.append((purpose, url.lower() if purpose == "redirect" else url))
    return out


def should_fail(deviation: str, model: str, mac: str) -> set[str]:
    """The promised cases where the deviant firmware's requests differ from the faithful
    firmware's beyond what URL equivalence forgives (a kept host case passes, with a note).
    A deviation in the phone's DHCP identification fails every case: each judges it."""
    if deviation in DHCP_DEVIATIONS:
        return {case.id for case in [*ALL_CASES, *CONDITION_CASES]}
    if deviation == "late-request":  # a late repeat: a lab convention, recorded not judged
        return set()                 # by default (tests/e2e/test_timing.py judges it)
    out = set()
    for case in ALL_CASES:
        expected = resolve(case.render(LAB_IP, LAB_DNS_NAME), PhoneIdentity(model, mac),
                           get_profile("2.2"), PhoneSettings(url_option=case.url_option))
        if expected.promised and _equivalent(_plan({deviation}, case, model, mac)) != \
                _equivalent(_plan(set(), case, model, mac)):
            out.add(case.id)
    return out


def takes_settings(deviation: str, model: str, mac: str) -> bool:
    """Whether the deviant firmware fetches the lab's settings file (framework.runner.
    settings): one that builds another path from it, or asks for no configuration, cannot
    be given the URL option 224 its cases need; those cases are broken, not failed."""
    from framework.rig import load_rig
    from framework.runner.settings import settings_options, settings_url

    spec = load_rig(Path(__file__).parents[2] / "rigs" / "sim.yaml").phones[0].model_copy(
        update={"mac": mac, "model": model})
    fw = Faithful400HD(deviations={deviation})
    plan = fw.plan(settings_options(LAB_IP, spec), model=model, mac=mac,
                   settings={"provisioning/url_option_value": "160"})
    return settings_url(LAB_IP, spec) in [r.url for r in plan.requests]


def run_lab(tmp: Path, prefix: str, phones: int, deviations: dict[str, list[str]],
            cases: list[Case], **kw: Any) -> dict[tuple[str, str], CaseResult]:
    rig = write_sim_rig(tmp / "rig.yaml", prefix=prefix, phones=phones, deviations=deviations,
                        boot_time_s=0.2, **{k: v for k, v in kw.items() if k != "trigger"})
    opts = RunOptions(rig_path=rig, reports_dir=tmp / "reports", settle_s=0.4,
                      trigger=kw.get("trigger", "check-sync"), boot_timeout_s=20,
                      request_timeout_s=3)
    with LabSession(opts) as session:
        session.schedule([(c, p.name) for p in session.rig.phones for c in cases])
        return {(c.id, p.name): session.result(c.id, p.name, timeout=600)
                for p in session.rig.phones for c in cases}


@pytest.mark.timeout(900)
@pytest.mark.parametrize("group", GROUPS, ids=[f"deviations-{i}" for i in range(len(GROUPS))])
def test_each_deviation_fails_exactly_the_cases_that_catch_it(tmp_path: Path,
                                                              group: list[str]) -> None:
    deviations = {f"ph{i + 2}": [d] for i, d in enumerate(group)}
    # the catalogue, and the cases under a lab condition (failure paths are observed;
    # the HTTPS refusals are judged: only a phone that trusts any certificate fails them)
    results = run_lab(tmp_path, f"hilt-e{os.getpid() % 1000}", len(group) + 1, deviations,
                      [*ALL_CASES, *CONDITION_CASES])
    unsettable = {f"ph{i + 2}" for i, d in enumerate(group)
                  if not takes_settings(d, MODELS[(i + 1) % len(MODELS)], _mac(i + 2))}
    broken = [k for k, r in results.items() if r.verdict == "broken"]
    needs_224 = {c.id for c in ALL_CASES if c.url_option == 224}
    assert set(broken) == {(c, ph) for c in needs_224 for ph in unsettable}, (
        f"rig faults in a deviation run: {broken[:3]} "
        f"{[results[k].reason for k in broken[:1]]}")
    for k in broken:  # the lab could not give the phone the setting: it says so
        assert "did not take provisioning/url_option_value=224" in results[k].reason
    control = {cid for (cid, ph), r in results.items() if ph == "ph1" and r.verdict == "failed"}
    assert control == set(), f"the faithful control phone failed {sorted(control)}"
    for i, deviation in enumerate(group):
        phone, n = f"ph{i + 2}", i + 2
        model = MODELS[(n - 1) % len(MODELS)]
        failed = {cid for (cid, ph), r in results.items() if ph == phone
                  and r.verdict == "failed"}
        wanted = should_fail(deviation, model, _mac(n))
        if deviation == "trusts-any-certificate":
            wanted |= {c.id for c in HTTPS_REFUSAL_CASES}
        if phone in unsettable:
            wanted -= needs_224
        assert failed == wanted, (
            f"{deviation} on {phone} ({model}): failed {sorted(failed)}, should fail "
            f"{sorted(wanted)}; e.g. {[results[(c, phone)].reason for c in sorted(failed ^ wanted)[:2]]}")


def test_every_deviation_is_caught_by_some_case() -> None:
    # Deviations in *when* the phone provisions (a restart and a second cycle) leave the
    # plan as it is: tests/e2e/test_timing.py proves those on the wire.
    uncaught = [d for d in sorted(REQUEST_DEVIATIONS) if not should_fail(d, "440HD", _mac(1))]
    # A deviation that only changes behaviour the manual does not promise can only show
    # as an observation; it must still change what the phone requests in some case.
    for d in uncaught:
        assert any(_plan({d}, c, "440HD", _mac(1)) != _plan(set(), c, "440HD", _mac(1))
                   for c in ALL_CASES), f"no case in the catalogue exercises {d}"


def test_dead_outlet_is_broken_not_failed(tmp_path: Path) -> None:
    cases = [by_id("t10-2/r2-host-ip"), by_id("t10-1/server-ftp")]
    results = run_lab(tmp_path, f"hilt-o{os.getpid() % 1000}", 2, {}, cases,
                      dead_outlets=[2], trigger="power-cycle")
    assert {r.verdict for (c, ph), r in results.items() if ph == "ph1"} == {"passed"}
    dead = [r for (c, ph), r in results.items() if ph == "ph2"]
    assert [r.verdict for r in dead] == ["broken", "broken"]
    assert "quarantined" in dead[1].reason
    _each_case_pcap_is_its_own_traffic(tmp_path / "reports" / "latest",
                                       [results[(c.id, "ph1")] for c in cases])


def _each_case_pcap_is_its_own_traffic(run_dir: Path, entries: list[CaseResult]) -> None:
    """The per-case pcap (sliced from the phone's run capture) holds that case's DHCP and
    file requests, from its start on, and nothing of the other case."""
    from scapy.layers.dhcp import BOOTP
    from scapy.utils import rdpcap

    entries = sorted(entries, key=lambda e: e.start)
    for entry, following in zip(entries, [*entries[1:], None], strict=True):
        (pcap,) = [e for e in entry.evidence if e.kind == "pcap"]
        frames = rdpcap(str(run_dir / pcap.path))
        assert frames and all(float(f.time) >= entry.start - 0.001 for f in frames)
        if following is not None:
            assert all(float(f.time) < following.start for f in frames)
        assert any(BOOTP in f and f[BOOTP].op == 1 for f in frames), "no DHCP from the phone"
        payload = b"".join(bytes(f) for f in frames)  # TFTP RRQ, FTP RETR: names in clear
        files = [o.url.rsplit("/", 1)[1] for o in entry.observed if o.url]
        assert files and all(name.encode() in payload for name in files), files
