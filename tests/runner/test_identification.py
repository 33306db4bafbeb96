"""DHCP identification (issue 16 item 7) from fabricated transcript records: the model in
options 60 and 77, option 55 asking for 66, 67 and the URL option; each with its ground."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from framework.resolution import get_profile
from framework.runner.identification import judge_identification, with_identification
from framework.runner.verdict import Judgement, Verdict

P22 = get_profile("2.2")
PRL = bytes([1, 3, 6, 12, 15, 28, 42, 43, 60, 66, 67, 160])


@dataclass(frozen=True)
class Msg:
    message_type: str
    options: dict[int, bytes] = field(default_factory=dict)


def good(kind: str = "DISCOVER", **over: bytes | None) -> Msg:
    options = {60: b"440HD", 77: b"440HD", 55: PRL}
    for code, value in over.items():
        if value is None:
            options.pop(int(code[1:]))
        else:
            options[int(code[1:])] = value
    return Msg(kind, options)


def run(*msgs: Msg, url_option: int = 160, **switches: str) -> tuple[dict[str, dict], object]:
    interp = P22.with_switches(**switches).interpretation if switches else P22.interpretation
    r = judge_identification(list(msgs), model="440HD", url_option=url_option, interp=interp)
    return {a["id"]: a for a in r.assertions}, r


def test_a_phone_that_says_who_it_is_holds_every_check() -> None:
    by_id, r = run(good(), good("REQUEST"), Msg("RELEASE"))
    assert all(a["holds"] for a in by_id.values()) and r.messages == 2  # type: ignore[attr-defined]
    assert by_id["identification/60"]["ground"]["kind"] == "manual"
    assert "Option fields 60 and 77" in by_id["identification/77"]["ground"]["quote"]
    assert by_id["identification/55"]["ground"]["kind"] == "field"
    assert all(a["judged"] for a in by_id.values())


def test_a_missing_option_77_fails_and_names_the_message() -> None:
    by_id, r = run(good(), good("REQUEST", o77=None))
    assert not by_id["identification/77"]["holds"]
    assert by_id["identification/77"]["detail"] == "REQUEST: no Option 77"
    assert r.judged_failures == ("REQUEST: no Option 77",)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("value", "encoding", "holds"), [
    (b"440HD", "either", True), (b"\x05440HD", "either", True),
    (b"\x05440HD", "rfc3004", True), (b"440HD", "rfc3004", False),
    (b"440HD", "raw", True), (b"\x05440HD", "raw", False),
    (b"\x05420HD", "either", False), (b"440HDG-Rev0", "either", True),
])
def test_option77_encoding_is_a_switch(value: bytes, encoding: str, holds: bool) -> None:
    by_id, _ = run(good(o77=value), option77_encoding=encoding)
    assert by_id["identification/77"]["holds"] is holds, by_id["identification/77"]["detail"]
    assert encoding.replace("either", "raw or RFC 3004").replace("rfc3004", "RFC 3004") \
        .split()[0] in by_id["identification/77"]["expected"]


def test_option55_must_ask_for_the_configured_url_option() -> None:
    by_id, _ = run(good(), url_option=224)
    assert by_id["identification/55"]["expected"] == "66, 67, 224"
    assert "does not ask for 224" in by_id["identification/55"]["detail"]
    assert run(good(o55=PRL + b"\xe0"), url_option=224)[0]["identification/55"]["holds"]


def test_the_other_model_in_option_60_fails() -> None:
    by_id, _ = run(good(o60=b"420HD"))
    assert by_id["identification/60"]["detail"] == \
        "DISCOVER: Option 60 '420HD' does not name the model 440HD"


def test_no_client_message_is_nothing_to_judge_by() -> None:
    by_id, r = run(Msg("ACK"))
    assert all(a["holds"] for a in by_id.values()) and r.messages == 0  # type: ignore[attr-defined]
    assert "nothing to judge by" in by_id["identification/60"]["detail"]


def test_a_judged_identification_failure_fails_even_an_observed_case() -> None:
    _, r = run(good(o77=None))
    base = Judgement(Verdict.OBSERVED, "not promised by profile 2.2 (...): matches", (), True)
    out = with_identification(base, r)  # type: ignore[arg-type]
    assert out.verdict is Verdict.FAILED and not out.matches
    assert out.reason.endswith("; DHCP identification: DISCOVER: no Option 77")
    assert [a["id"] for a in out.assertions][-3:] == [
        "identification/60", "identification/77", "identification/55"]
    passed = with_identification(Judgement(Verdict.PASSED, "fine", (), True), r)  # type: ignore[arg-type]
    assert passed.reason == "DHCP identification: DISCOVER: no Option 77"


def test_a_field_ground_left_unjudged_is_observed() -> None:
    _, r = run(good(o55=bytes([1, 3, 6])), judged_grounds="manual")
    out = with_identification(Judgement(Verdict.PASSED, "fine", (), True), r)  # type: ignore[arg-type]
    assert out.verdict is Verdict.PASSED and not out.matches
    assert "DHCP identification, observed, not judged: DISCOVER: Option 55 (1, 3, 6) " \
           "does not ask for 66, 67, 160" in out.reason
    broken = with_identification(Judgement(Verdict.BROKEN, "rig", (), False), run(
        good(o77=None))[1])  # type: ignore[arg-type]
    assert broken.verdict is Verdict.BROKEN
