"""Records shaped like the runner's, for the tests of the writer and of every reader."""

from __future__ import annotations

from typing import Any

from framework.records import CaseResult, ObservedRequest, PhoneRecord, RunRecord

EXPECTED: dict[str, Any] = {
    "rule": "T10-2/r2-host", "promise": "promised", "source": "66/67", "profile": "2.2",
    "firmware_url": "tftp://192.0.2.1/440HD.img",
    "config_url": "tftp://192.0.2.1/00908F000001.cfg",
}


def run_meta(run_id: str = "r1", **over: Any) -> dict[str, Any]:
    """A run as LabSession starts it (``status`` running, ``end`` None)."""
    return {"id": run_id, "rig": "sim", "rig_file": "/rigs/sim.yaml",
            "framework_revision": "abc", "start": 10.0, "end": None, "status": "running",
            "trigger": "reprovision", "settle_s": 0.6, "profile_override": None,
            "host": "vm", **over}


def phone_meta(name: str = "ph1", **over: Any) -> dict[str, Any]:
    return {"name": name, "model": "440HD", "mac": "00908F000001", "address": "192.0.2.11",
            "firmware": "2.2.8.61", "expected_firmware": "2.2.8.61", "profile": None,
            "state": "pending", **over}


def run_record(run_id: str = "r1", **over: Any) -> RunRecord:
    return RunRecord.from_json(run_meta(run_id, **over))


def phone_record(name: str = "ph1", **over: Any) -> PhoneRecord:
    return PhoneRecord.from_json(phone_meta(name, **over))


def case_json(case_id: str = "a", phone: str = "ph1", verdict: str = "passed",
              **over: Any) -> dict[str, Any]:
    """A judged case as the runner writes it (the optional keys of a judged case set)."""
    return {
        "id": case_id, "group": "precedence", "title": "Sources present: 66",
        "manual": "Admin Manual 2.2.8, 10.2.2", "phone": phone, "model": "440HD",
        "mac": "00908F000001", "firmware": "2.2.8.61", "profile": "2.2", "url_option": 160,
        "options": {"66": "192.0.2.1"}, "expected": dict(EXPECTED),
        "observed": [{"time": 10.5, "protocol": "tftp", "url": EXPECTED["firmware_url"],
                      "host": "192.0.2.1", "outcome": "served", "detail": "RRQ",
                      "offset_s": 0.4}],
        "verdict": verdict, "reason": f"because {verdict} <b>", "start": 10.1, "end": 11.0,
        "evidence": [], "trigger": "reprovision", "ack_at": [10.2], "cycles": 1,
        "differences": [], "matches_core": verdict == "passed", **over}


def case(case_id: str = "a", phone: str = "ph1", verdict: str = "passed",
         **over: Any) -> CaseResult:
    return CaseResult.from_json(case_json(case_id, phone, verdict, **over))


def request(time: float, url: str, outcome: str = "served") -> ObservedRequest:
    return ObservedRequest(time=time, protocol=url.split(":", 1)[0], url=url, host="192.0.2.1",
                           outcome=outcome, detail="GET")
