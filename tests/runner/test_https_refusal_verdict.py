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


def tls(outcome: str, *, shown: bool, sni: str | None = NAME, error: str = "") -> Any:
    details: dict[str, Any] = {"sni": sni, "refused_certificate": shown}
    if outcome == Outcome.ERROR:
        details["error"] = f"TLS handshake failed: {error}"
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


def test_a_handshake_the_phone_ended_over_the_refused_certificate_passes() -> None:
    got = verdict(tls(Outcome.ERROR, shown=True, error=ALERT))
    assert got.verdict == Verdict.PASSED and got.reason.startswith("refused: 1 handshake")


@pytest.mark.parametrize(("record", "why"), [
    (tls(Outcome.ERROR, shown=False, sni=None, error=ALERT),
     "the refused certificate was never presented"),
    (tls(Outcome.ERROR, shown=True, error="The read operation timed out"),
     "timed out on the lab's side"),
])
def test_what_did_not_test_the_phone_is_observed_not_passed(record: Any, why: str) -> None:
    got = verdict(record)
    assert got.verdict == Verdict.OBSERVED and why in got.reason


def test_no_connection_at_all_is_observed() -> None:
    got = verdict()
    assert got.verdict == Verdict.OBSERVED and "made no HTTPS connection" in got.reason
