"""The HTTPS-refusal verdict from the lab TLS server's evidence (framework.runner.failures
``conclude``), without a wire: which handshakes count as the phone refusing.

A refusal is a handshake the phone ended over the refused certificate. A phone that sent
no SNI was shown the lab's default certificate, so the refused one was never tested; a
handshake that timed out on the lab's side is the lab's, not the phone's. Both are
observed, never a pass. (The whole loop on the wire: test_failures_on_wire.py.)
"""

from __future__ import annotations

from typing import Any

import pytest

from framework.resolution import get_profile
from framework.runner.failures import HTTPS_REFUSAL_CASES, conclude
from framework.runner.verdict import Judgement, Verdict
from framework.services.log import Outcome, RequestRecord

CASE = HTTPS_REFUSAL_CASES[0]
NAME = CASE.condition.name  # type: ignore[union-attr]
ACK = 1000.0
INTERP = get_profile("2.2").interpretation


def tls(outcome: str, *, shown: bool, sni: str | None = NAME, error: str = "",
        lab_timed_out: bool = False) -> Any:
    """A handshake as framework.services.tls_terminator records it."""
    details: dict[str, Any] = {"sni": sni, "refused_certificate": shown}
    if outcome == Outcome.ERROR:
        details["error"] = f"TLS handshake failed: {error}"
        details["lab_timed_out"] = lab_timed_out
    else:
        details["tls"] = "handshake completed"
    return RequestRecord(time=ACK + 0.5, protocol="https", client_ip="192.0.2.11",
                         host=sni or str(NAME), path="", url=None, method="TLS",
                         outcome=outcome, details=details)


def verdict(*records: Any) -> Judgement:
    core = Judgement(Verdict.FAILED, "the expected file was not fetched")
    judged, _ = conclude(CASE, core, list(records), ACK, INTERP)
    return judged


ALERT = "[SSL: SSLV3_ALERT_CERTIFICATE_EXPIRED] sslv3 alert certificate expired"


def refusal(got: Judgement) -> dict[str, Any]:
    (a,) = [a for a in got.assertions if a["id"] == "security/https-refusal"]
    return a


def test_a_handshake_the_phone_ended_over_the_refused_certificate_passes() -> None:
    got = verdict(tls(Outcome.ERROR, shown=True, error=ALERT))
    assert got.verdict == Verdict.PASSED and got.reason.startswith("refused: 1 handshake")
    assert refusal(got)["judged"] and refusal(got)["holds"]


def test_a_request_completed_over_the_refused_certificate_fails() -> None:
    completed = RequestRecord(time=ACK + 0.6, protocol="https", client_ip="192.0.2.11",
                              host=str(NAME), path="/cfg.cfg", url=f"https://{NAME}/cfg.cfg",
                              method="GET", outcome=Outcome.SERVED, status=200)
    got = verdict(tls(Outcome.SERVED, shown=True), completed)
    assert got.verdict == Verdict.FAILED and "accepted a certificate" in got.reason
    assert refusal(got)["judged"] and not refusal(got)["holds"]


@pytest.mark.parametrize(("record", "why"), [
    (tls(Outcome.ERROR, shown=False, sni=None, error=ALERT),
     "the refused certificate was never presented"),
    (tls(Outcome.ERROR, shown=True, error="_ssl.c:983: The handshake operation timed out",
         lab_timed_out=True),
     "timed out on the lab's side"),
])
def test_what_did_not_test_the_phone_is_observed_not_passed(record: Any, why: str) -> None:
    got = verdict(record)
    assert got.verdict == Verdict.OBSERVED and why in got.reason
    assert not refusal(got)["judged"]  # counted as observed in by_ground, never passed


def test_no_connection_at_all_is_observed() -> None:
    got = verdict()
    assert got.verdict == Verdict.OBSERVED and "made no HTTPS connection" in got.reason
