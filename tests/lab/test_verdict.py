"""Verdicts from expected vs observed requests: every way a phone can be wrong is named."""

from __future__ import annotations

from framework.lab.verdict import Observed, Verdict, judge
from framework.resolution import PhoneIdentity, get_profile, resolve

PHONE = PhoneIdentity("440HD", "00908F000001")
P22 = get_profile("2.2")


def files(*urls: str) -> list[Observed]:
    return [Observed(float(i), u.split(":")[0], u, None) for i, u in enumerate(urls)]


def dns(*names: str) -> list[Observed]:
    return [Observed(0.0, "dns", None, n) for n in names]


EXP = resolve({66: b"AudioCodes.Lab.Example"}, PHONE)
FW = "tftp://audiocodes.lab.example/440HD.img"
CFG = "tftp://audiocodes.lab.example/00908F000001.cfg"


def j(obs_files: list[Observed], obs_dns: list[Observed] | None = None, exp=EXP):  # type: ignore[no-untyped-def]
    return judge(exp, obs_files, obs_dns or [], mac=PHONE.mac, interp=P22.interpretation)


def test_exact_requests_pass() -> None:
    r = j(files(FW, CFG), dns("audiocodes.lab.example"))
    assert r.verdict is Verdict.PASSED and "2 expected URLs" in r.reason


def test_retries_of_the_same_url_are_not_extra() -> None:
    assert j(files(FW, FW, CFG)).verdict is Verdict.PASSED


def test_missing_config_fails_and_says_which() -> None:
    r = j(files(FW))
    assert r.verdict is Verdict.FAILED
    assert f"configuration: expected {CFG}, not requested" in r.reason


def test_mac_case_difference_is_named() -> None:
    r = j(files(FW, CFG.replace("00908F000001", "00908f000001")))
    assert r.verdict is Verdict.FAILED and "MAC case differs" in r.reason


def test_host_case_difference_is_named() -> None:
    r = j(files(FW.replace("audiocodes.lab.example", "AudioCodes.Lab.Example"), CFG))
    assert r.verdict is Verdict.FAILED and "host case differs" in r.reason


def test_wrong_protocol_is_named() -> None:
    r = j(files(FW.replace("tftp", "http"), CFG))
    assert "protocol http instead of tftp" in r.reason


def test_extra_request_fails() -> None:
    r = j(files(FW, CFG, "http://audiocodes.lab.example/extra.cfg"))
    assert r.verdict is Verdict.FAILED and "unexpected request http://audiocodes" in r.reason


def test_order_is_checked() -> None:
    r = j(files(CFG, FW))
    assert r.verdict is Verdict.FAILED and "configuration requested before firmware" in r.reason


def test_unexpected_dns_query_fails() -> None:
    r = j(files(FW, CFG), dns("redirect.audiocodes.com"))
    assert r.verdict is Verdict.FAILED and "unexpected DNS query for redirect" in r.reason


def test_redirect_lookup_allowed_when_nothing_expected() -> None:
    none = resolve({}, PHONE)
    assert j([], dns("redirect.audiocodes.com"), exp=none).verdict is Verdict.PASSED
    assert j(files(FW), exp=none).verdict is Verdict.FAILED


def test_unpromised_rows_are_observations_either_way() -> None:
    pending = resolve({66: b"http://AudioCodes.Lab.Example"}, PHONE, "3.4")
    same = judge(pending, files("http://audiocodes.lab.example/440HD.img",
                                "http://audiocodes.lab.example/00908F000001.cfg"), [],
                 mac=PHONE.mac, interp=P22.interpretation)
    other = judge(pending, [], [], mac=PHONE.mac, interp=P22.interpretation)
    assert same.verdict is Verdict.OBSERVED and same.matches
    assert other.verdict is Verdict.OBSERVED and not other.matches
    assert "not requested" in other.reason
