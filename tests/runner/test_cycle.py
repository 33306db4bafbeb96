"""Which requests belong to which case: cycles, late requests, amendments, DNS attribution.

The wire behaviour (a virtual phone that is late, one that reboots after its
configuration) is proven in tests/e2e/test_timing.py; these tests pin the rules.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from framework.records import CaseResult, RunRecord, load_record
from framework.resolution import PhoneIdentity, get_profile, resolve
from framework.rig.model import PhoneSpec
from framework.runner.cycle import (
    CaseListener,
    CaseWindow,
    Cycle,
    amend_late,
    judge_cycles,
    new_lease,
    observed,
    starts_cycle,
)
from framework.runner.record import CertificationRecord
from framework.runner.verdict import Verdict
from framework.services.log import RequestLog, RequestRecord

PHONE = PhoneIdentity("440HD", "00908F000001")
INTERP = get_profile("2.2").interpretation
EXP = resolve({66: b"192.0.2.1"}, PHONE)
FW = "tftp://192.0.2.1/440HD.img"
CFG = "tftp://192.0.2.1/00908F000001.cfg"
IP = "192.0.2.11"


def rec(t: float, url: str | None = None, *, name: str | None = None,
        answer: str = "192.0.2.1") -> RequestRecord:
    if url is None:
        return RequestRecord(time=t, protocol="dns", client_ip=IP, host=name or "x", path="",
                             url=None, method="A", outcome="served",
                             details={"answer": [answer], "ttl": 300})
    path = url.split("/", 3)[3]
    return RequestRecord(time=t, protocol="tftp", client_ip=IP, host="192.0.2.1", path=path,
                         url=url, method="RRQ", outcome="served")


def window(*cycles: tuple[float, list[RequestRecord]], trigger: float = 100.0) -> CaseWindow:
    return CaseWindow(trigger, [Cycle(ack, list(rs)) for ack, rs in cycles], None)


def entry(verdict: str = "passed", reason: str = "requested the 2 expected URLs in order, "
          "nothing else", **fields: Any) -> CaseResult:
    return CaseResult.from_json({
        "id": "t10-2/r3", "group": "t10-2", "title": "r3", "manual": "10.2", "phone": "ph1",
        "model": "440HD", "mac": PHONE.mac, "firmware": None, "profile": "2.2",
        "url_option": 66, "options": {}, "expected": None, "observed": [],
        "verdict": verdict, "reason": reason, "start": 100.0, "end": 101.0, "evidence": [],
        **fields})


def test_one_cycle_is_judged_as_before() -> None:
    w = window((100.1, [rec(100.2, FW), rec(100.3, CFG)]))
    j = judge_cycles(EXP, w, mac=PHONE.mac, interp=INTERP)
    assert j.verdict is Verdict.PASSED and j.reason.startswith("requested the 2 expected")


def test_a_second_cycle_is_judged_too_and_named_when_it_differs() -> None:
    w = window((100.1, [rec(100.2, FW), rec(100.3, CFG)]),
               (103.0, [rec(103.1, FW), rec(103.2, "tftp://192.0.2.1/440hd.cfg")]))
    j = judge_cycles(EXP, w, mac=PHONE.mac, interp=INTERP)
    assert j.verdict is Verdict.FAILED
    assert "2 DHCP cycles" in j.reason and "+3.0 s" in j.reason
    assert "cycle 2:" in j.reason and "cycle 1:" not in j.reason
    assert all(d.startswith("cycle 2: ") for d in j.differences)


def test_two_good_cycles_pass_and_say_so() -> None:
    w = window((100.1, [rec(100.2, FW), rec(100.3, CFG)]),
               (103.0, [rec(103.1, FW), rec(103.2, CFG)]))
    j = judge_cycles(EXP, w, mac=PHONE.mac, interp=INTERP)
    assert j.verdict is Verdict.PASSED and "2 DHCP cycles" in j.reason


def test_a_second_cycle_that_misses_the_configuration_fails() -> None:
    w = window((100.1, [rec(100.2, FW), rec(100.3, CFG)]), (103.0, [rec(103.1, FW)]))
    j = judge_cycles(EXP, w, mac=PHONE.mac, interp=INTERP)
    assert j.verdict is Verdict.FAILED and "cycle 2: configuration: expected" in j.reason


def test_an_unexpected_late_request_fails_the_case_with_its_offset() -> None:
    w = window((100.1, [rec(100.2, FW), rec(100.3, CFG)]))
    late = [rec(102.2, "tftp://192.0.2.1/late.cfg")]
    out = amend_late(entry(), EXP, w, late, mac=PHONE.mac, interp=INTERP, settle_s=0.6)
    assert out.verdict == "failed"
    assert out.reason.startswith("late request tftp://192.0.2.1/late.cfg at +2.2 s after "
                                 "the trigger")
    assert "unexpected request tftp://192.0.2.1/late.cfg" in out.reason
    assert out.late is not None and out.late[0].offset_s == 2.2
    assert [o.url for o in out.observed] == ["tftp://192.0.2.1/late.cfg"]


def test_a_late_repeat_of_an_expected_url_is_recorded_not_judged_by_default() -> None:
    """That a cycle ends when the phone falls quiet is a lab convention (ground ``late``):
    the default profile (judged_grounds=manual,field) records a late repeat, does not fail."""
    w = window((100.1, [rec(100.2, FW), rec(100.3, CFG)]))
    first = judge_cycles(EXP, w, mac=PHONE.mac, interp=INTERP)
    out = amend_late(entry(assertions=list(first.assertions)), EXP, w, [rec(102.5, CFG)],
                     mac=PHONE.mac, interp=INTERP, settle_s=0.6)
    assert out.verdict == "passed" and out.matches_core is False
    assert f"late request {CFG} at +2.5 s after the trigger" in out.reason
    assert "Recorded, not judged" in out.reason
    assert out.late is not None and out.differences == [f"late: {CFG} at +2.5 s"]
    assert out.assertions is not None
    (late,) = [a for a in out.assertions if a.id == "late"]
    assert not late.holds and not late.judged and late.ground.kind == "lab"


def test_a_late_repeat_fails_when_the_profile_judges_lab_grounds() -> None:
    strict = get_profile("2.2").with_switches(judged_grounds="manual,field,lab").interpretation
    w = window((100.1, [rec(100.2, FW), rec(100.3, CFG)]))
    first = judge_cycles(EXP, w, mac=PHONE.mac, interp=strict)
    out = amend_late(entry(assertions=list(first.assertions)), EXP, w, [rec(102.5, CFG)],
                     mac=PHONE.mac, interp=strict, settle_s=0.6)
    assert out.verdict == "failed"
    assert out.reason.startswith(f"late request {CFG} at +2.5 s after the trigger")
    assert "before it: requested the 2 expected URLs" in out.reason
    assert out.assertions is not None
    (late,) = [a for a in out.assertions if a.id == "late"]
    assert not late.holds and late.judged


def test_an_observed_case_stays_observed_and_says_what_came_late() -> None:
    w = window((100.1, [rec(100.2, FW), rec(100.3, CFG)]))
    out = amend_late(entry("observed", "not promised by profile 2.2 (...): matches"), EXP, w,
                     [rec(101.5, CFG)], mac=PHONE.mac, interp=INTERP, settle_s=0.6)
    assert out.verdict == "observed" and out.matches_core is False
    assert "late request" in out.reason


def test_a_late_request_keeps_a_broken_case_broken() -> None:
    w = window((100.1, []))
    out = amend_late(entry("broken", "rig fault during the case: lab TFTP ..."), EXP, w,
                     [rec(101.0, "tftp://192.0.2.1/x.cfg")], mac=PHONE.mac, interp=INTERP,
                     settle_s=0.6)
    assert out.verdict == "broken" and out.reason.startswith("rig fault")
    assert "late request tftp://192.0.2.1/x.cfg at +1.0 s" in out.reason


def test_an_amended_case_replaces_the_first_verdict_in_the_record(tmp_path: Path) -> None:
    run = RunRecord(id="r", rig="sim", framework_revision="test", start=None, end=None,
                    status="running")
    record = CertificationRecord(tmp_path, run, [])
    first = entry(cycles=1)
    record.add_case(first)
    record.add_case(entry(id="other"))
    assert record.amend_case(first.amended(verdict="failed", reason="late request ..."))
    assert not record.amend_case(first.amended(id="never-ran"))
    record.finish()
    doc = load_record(tmp_path)
    assert [c.verdict for c in doc.cases] == ["failed", "passed"]
    assert [c.cycles for c in doc.cases] == [1, None]
    assert doc.summary["failed"] == 1 and doc.summary["total"] == 2
    # cases.jsonl keeps both versions (durable first); the last one of a case wins
    lines = [json.loads(x) for x in (tmp_path / "cases.jsonl").read_text().splitlines()]
    assert [c["verdict"] for c in lines] == ["passed", "passed", "failed"]
    # a crash after the amendment but before certification.json was rewritten
    stale = json.loads((tmp_path / "certification.json").read_text())
    stale["cases"][0]["verdict"] = "passed"
    (tmp_path / "certification.json").write_text(json.dumps(stale))
    assert load_record(tmp_path).cases[0].verdict == "failed"


def test_a_previous_cycles_dns_answer_logged_late_names_no_later_request() -> None:
    log = RequestLog()
    log.append(rec(10.0, name="audiocodes.lab.example"))
    log.forget_names(IP, before=20.0)  # the new cycle's ACK
    assert log.name_for(IP, "192.0.2.1", at=10.5) is None
    # the previous cycle's look-up (made at 19.9) is logged only now: not this cycle's
    log.append(rec(19.9, name="audiocodes.lab.example"))
    assert log.host_for(IP, "192.0.2.1", at=21.0) == "192.0.2.1"
    log.append(rec(20.5, name="Prov.lab.example"))  # this cycle's own look-up counts
    assert log.name_for(IP, "192.0.2.1", at=21.0) == "Prov.lab.example"


class _Msg:
    def __init__(self, t: float, direction: str, kind: str, ciaddr: str = "0.0.0.0",
                 yiaddr: str = IP, mac: str = "00:90:8f:00:00:01") -> None:
        self.time, self.direction, self.message_type = t, direction, kind
        self.ciaddr, self.yiaddr, self.mac = ciaddr, yiaddr, mac


def test_renewals_are_not_new_cycles() -> None:
    assert starts_cycle(_Msg(1, "received", "DISCOVER"))
    assert starts_cycle(_Msg(1, "received", "REQUEST"))  # INIT-REBOOT / SELECTING
    assert not starts_cycle(_Msg(1, "received", "REQUEST", ciaddr=IP))  # renewing
    assert new_lease(_Msg(1, "sent", "ACK")) and not new_lease(_Msg(1, "sent", "ACK", IP))


class _Dhcp:
    """The DHCP side of a CaseListener: a transcript that tests append to."""

    def __init__(self) -> None:
        self.msgs: list[_Msg] = []
        self.subs: list[Any] = []
        self.cond = threading.Condition()

    def add(self, m: _Msg) -> None:
        with self.cond:
            self.msgs.append(m)
            self.cond.notify_all()
        for s in list(self.subs):
            s(m)

    def subscribe(self, cb: Any) -> Any:
        self.subs.append(cb)
        return lambda: self.subs.remove(cb)

    def transcript(self, mac: str | None = None) -> list[_Msg]:
        return list(self.msgs)

    def wait_for(self, mac: str, kind: str, *, since: float, timeout: float) -> _Msg:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(
                m.message_type == kind and m.time >= since for m in self.msgs), timeout)
            if not ok:
                raise TimeoutError(kind)
            return next(m for m in self.msgs if m.message_type == kind and m.time >= since)


SPEC = PhoneSpec.model_validate({
    "name": "ph1", "model": "440HD", "mac": "00908F000001", "address": IP,
    "firmware": "2.2.8.61", "power": {"pdu": "pdu1", "outlet": 1},
    "console": {"ssh": {}}, "credentials": {"username": "admin", "password": {"env": "X"}}})


def test_a_new_dhcp_cycle_in_the_settle_window_is_followed_and_judged() -> None:
    log, dhcp = RequestLog(), _Dhcp()
    listener = CaseListener(log, dhcp, SPEC, settle_s=0.4, request_timeout_s=3.0,
                            boot_timeout_s=3.0)
    t0 = time.time()
    dhcp.add(_Msg(t0, "sent", "ACK"))

    def phone() -> None:  # one cycle, a reboot, a second cycle (event-driven on the log)
        log.append(rec(time.time(), FW))
        log.append(rec(time.time(), CFG))
        dhcp.add(_Msg(time.time(), "received", "DISCOVER"))
        dhcp.add(_Msg(time.time(), "sent", "ACK"))
        log.append(rec(time.time(), FW))
        log.append(rec(time.time(), CFG))

    w = CaseWindow(t0)
    with listener:
        threading.Thread(target=phone, daemon=True).start()
        listener.listen(w, 2, t0)
    assert len(w.cycles) == 2, w
    assert [len(c.records) for c in w.cycles] == [2, 2]
    assert judge_cycles(EXP, w, mac=PHONE.mac, interp=INTERP).verdict is Verdict.PASSED
    # nothing came after the verdict: nothing is late
    assert listener.late(w, time.time() + 1) == []
    log.append(rec(time.time(), "tftp://192.0.2.1/late.cfg"))
    assert [r.url for r in listener.late(w, time.time() + 1)] == [
        "tftp://192.0.2.1/late.cfg"]


def test_a_restart_the_health_check_brings_in_is_followed_and_checked_again() -> None:
    """A console slower than the settle window: the reboot banner is read only while the
    health check talks to the console. The phone was not quiet: the listener follows the
    second cycle, and checks the rig again once the phone is quiet."""
    log, dhcp = RequestLog(), _Dhcp()
    banner: list[Any] = []

    def restarts(callback: Any) -> Any:
        banner.append(callback)
        return lambda: None
    listener = CaseListener(log, dhcp, SPEC, settle_s=0.2, request_timeout_s=3.0,
                            boot_timeout_s=3.0, restarts=restarts)
    t0 = time.time()
    dhcp.add(_Msg(t0, "sent", "ACK"))
    checks: list[int] = []

    def second_cycle() -> None:
        dhcp.add(_Msg(time.time(), "received", "DISCOVER"))
        dhcp.add(_Msg(time.time(), "sent", "ACK"))
        log.append(rec(time.time(), FW))
        log.append(rec(time.time(), CFG))

    def health_check(seen: set[str]) -> None:  # the console round trip reads the banner
        checks.append(len(w.cycles))
        if len(checks) == 1:
            banner[0]()
            threading.Thread(target=second_cycle, daemon=True).start()

    w = CaseWindow(t0)
    with listener:
        log.append(rec(time.time(), FW))
        log.append(rec(time.time(), CFG))
        listener.listen(w, 2, t0, on_settle=health_check)
    assert len(w.cycles) == 2 and [len(c.records) for c in w.cycles] == [2, 2], w
    assert checks == [1, 2]  # checked when quiet after each cycle; the last check stands
    assert judge_cycles(EXP, w, mac=PHONE.mac, interp=INTERP).verdict is Verdict.PASSED
    assert listener.late(w, time.time() + 1) == []


def test_a_tftp_request_keeps_a_host_name_only_if_this_cycle_looked_it_up() -> None:
    named = RequestRecord(time=50.0, protocol="tftp", client_ip=IP, host="audiocodes.lab.example",
                          path="440HD.img", url="tftp://audiocodes.lab.example/440HD.img",
                          method="RRQ", outcome="not-found", server_ip="192.0.2.1",
                          server_port=69)
    # the name came from the previous case's look-up: the phone asked by address
    files, _ = observed([named])
    assert [(o.url, o.host) for o in files] == [("tftp://192.0.2.1/440HD.img", "192.0.2.1")]
    # this cycle looked it up first: the name stands
    files, _ = observed([rec(49.9, name="audiocodes.lab.example"), named])
    assert files[0].url == "tftp://audiocodes.lab.example/440HD.img"
    # a look-up after the request does not name it
    files, _ = observed([named, rec(50.1, name="audiocodes.lab.example")])
    assert files[0].host == "192.0.2.1"


def test_a_late_amendment_rejudges_the_assertions_and_keeps_the_identification_ones() -> None:
    ident = {"id": "identification/60", "what": "the model name in Option 60", "expected":
             "440HD", "judged": True, "holds": True, "detail": "",
             "ground": {"kind": "manual", "source": "Admin Manual", "quote": "q"}}
    first = judge_cycles(EXP, window((100.1, [rec(100.2, FW), rec(100.3, CFG)])),
                         mac=PHONE.mac, interp=INTERP)
    w = window((100.1, [rec(100.2, FW), rec(100.3, CFG)]))
    out = amend_late(entry(assertions=[*first.assertions, ident]), EXP, w,
                     [rec(102.2, "tftp://192.0.2.1/late.cfg")], mac=PHONE.mac, interp=INTERP,
                     settle_s=0.6)
    assert out.assertions is not None
    by_id = {a.id: a for a in out.assertions}
    assert not by_id["nothing-else"].holds and "late.cfg" in by_id["nothing-else"].detail
    assert by_id["identification/60"].holds
