"""Verdicts with grounds and URL equivalence (issue 16 items 1, 2, 8), from fabricated
observations (no sim, no network)."""

from __future__ import annotations

import re

import pytest

from framework.resolution import ExpectedProvisioning, PhoneIdentity, Profile, get_profile, resolve
from framework.runner.verdict import Judgement, Observed, Verdict, judge
from tests.resolution.vectors import ALL, Vector

PHONE = PhoneIdentity("440HD", "00908F000001")
P22 = get_profile("2.2")
STRICT = P22.with_switches(url_compare="byte-exact")


def files(*urls: str) -> list[Observed]:
    return [Observed(float(i), u.split(":")[0].lower(), u, None) for i, u in enumerate(urls)]


def j(exp: ExpectedProvisioning, urls: list[str], profile: Profile = P22,
      mac: str = PHONE.mac) -> Judgement:
    return judge(exp, files(*urls), [], mac=mac, interp=profile.interpretation,
                 model=PHONE.model)


EXP = resolve({66: b"Audiocodes.Lab.Example"}, PHONE)
FW = "tftp://audiocodes.lab.example/440HD.img"
CFG = "tftp://audiocodes.lab.example/00908F000001.cfg"


def _keep_host_case(url: str, options: dict[int, bytes]) -> str:
    """The URL a phone that keeps the host's case from the option would request."""
    host = url.split("://", 1)[1].split("/", 1)[0]
    for raw in options.values():
        m = re.search(re.escape(host), raw.decode("latin-1"), re.IGNORECASE)
        if m:
            return url.replace(host, m.group(), 1)
    return url


PROMISED = [v for v in ALL if v.promise == "promised" and v.firmware_url and v.config_url]
KEPT = [v for v in PROMISED
        if _keep_host_case(v.firmware_url or "", v.options) != v.firmware_url]


def _vector(v: Vector, profile: Profile) -> tuple[ExpectedProvisioning, Judgement]:
    prof = profile.with_switches(**v.switches) if v.switches else profile
    phone = PhoneIdentity(v.model, v.mac)
    exp = resolve(v.options, phone, prof)
    urls = [_keep_host_case(r.url, v.options) for r in exp.requests]
    return exp, judge(exp, files(*urls), [], mac=phone.mac, interp=prof.interpretation,
                      model=phone.model)


def test_there_are_manual_vectors_whose_host_has_capitals() -> None:
    assert len(KEPT) >= 4  # Audiocodes.com in Table 10-2, capitals in Table 10-1 tests


@pytest.mark.parametrize("v", PROMISED, ids=[v.id for v in PROMISED])
def test_a_phone_keeping_the_host_case_passes_by_default(v: Vector) -> None:
    exp, r = _vector(v, P22)
    assert exp.promised and r.verdict is Verdict.PASSED, r.reason
    assert bool(r.notes) == (v in KEPT)
    assert all("host case differs" in n for n in r.notes)


@pytest.mark.parametrize("v", KEPT, ids=[v.id for v in KEPT])
def test_the_same_phone_fails_the_host_case_vectors_under_byte_exact(v: Vector) -> None:
    _, r = _vector(v, STRICT)
    assert r.verdict is Verdict.FAILED and "(host case differs)" in r.reason
    assert not r.notes


def test_each_assertion_is_kept_with_its_ground_and_outcome() -> None:
    r = j(EXP, [FW, CFG])
    assert r.verdict is Verdict.PASSED
    assert [(a["id"], a["judged"], a["ground"]["kind"], a["holds"]) for a in r.assertions] == [
        ("request/firmware", True, "manual", True),
        ("request/configuration", True, "manual", True),
        ("mac-case", True, "field", True),
        ("order", True, "manual", True),
        ("nothing-else", True, "manual", True)]
    assert "Table 10-2, row 2" in r.assertions[0]["ground"]["source"]


def test_mac_case_fails_on_its_field_ground_by_default() -> None:
    lower = CFG.replace("00908F000001", "00908f000001")
    r = j(EXP, [FW, lower])
    assert r.verdict is Verdict.FAILED
    assert r.reason == f"configuration: expected {CFG}, requested {lower} (MAC case differs)"
    failed = [a for a in r.assertions if not a["holds"]]
    assert [(a["id"], a["ground"]["kind"]) for a in failed] == [("mac-case", "field")]


def test_mac_case_is_observed_when_the_profile_judges_only_the_manual() -> None:
    lower = CFG.replace("00908F000001", "00908f000001")
    r = j(EXP, [FW, lower], P22.with_switches(judged_grounds="manual"))
    assert r.verdict is Verdict.PASSED and not r.matches
    assert r.reason.endswith(f"observed, not judged: configuration: expected {CFG}, "
                             f"requested {lower} (MAC case differs) (field ground)")


def test_mac_case_forgiven_by_the_switch_is_a_note() -> None:
    lower = CFG.replace("00908F000001", "00908f000001")
    r = j(EXP, [FW, lower], P22.with_switches(mac_compare="case-insensitive"))
    assert r.verdict is Verdict.PASSED and r.matches
    assert "mac-case" not in [a["id"] for a in r.assertions]
    assert r.notes and "MAC case differs (switch mac_compare=case-insensitive)" in r.notes[0]


@pytest.mark.parametrize(("observed", "why"), [
    ("tftp://audiocodes.lab.example:69/440HD.img", "port 69 is the default"),
    ("tftp://audiocodes.lab.example/440%48D.img", "percent-encoding differs"),
])
def test_other_equivalences_are_notes(observed: str, why: str) -> None:
    r = j(EXP, [observed, CFG])
    assert r.verdict is Verdict.PASSED and why in r.notes[0]
    assert j(EXP, [observed, CFG], STRICT).verdict is Verdict.FAILED


def test_a_real_difference_is_named_without_the_forgiven_parts() -> None:
    wrong = "tftp://AudioCodes.Lab.Example/440HD.bin"
    r = j(EXP, [wrong, CFG])
    assert r.verdict is Verdict.FAILED
    assert r.reason == f"firmware: expected {FW}, requested {wrong} (extension .bin instead of .img)"


def test_an_unpromised_case_names_what_made_it_unpromised() -> None:
    exp = resolve({66: b"bad host!", 43: b"http://h43/a.img"}, PHONE)
    r = j(exp, ["http://h43/a.img", "http://h43/00908F000001.cfg"])
    assert r.verdict is Verdict.OBSERVED and r.matches
    assert r.reason == ("not promised by profile 2.2 (T10-2/x-malformed: unspecified (66 is "
                        "not a usable server address: no URL from 66/67)): matches the core's "
                        "expectation")
    assert not any(a["judged"] for a in r.assertions)


def test_the_unpromised_option43_format_names_the_switch() -> None:
    prof = P22.with_switches(option43_format="auto")
    exp = resolve({43: b"\x01\x10http://h43/a.img"}, PHONE, prof)
    r = j(exp, [], prof)
    assert r.verdict is Verdict.OBSERVED and not r.matches
    assert "switch option43_promised=url-string promises 43/url-string only" in r.reason


def test_nothing_expected_rests_on_table_10_2_row_1() -> None:
    exp = resolve({66: b"", 67: b"abc.img;efg.cfg"}, PHONE)
    r = j(exp, [])
    assert r.verdict is Verdict.PASSED and [a["id"] for a in r.assertions] == ["nothing-else"]
    assert "When Option 66 doesn’t exist" in r.assertions[0]["ground"]["quote"]
    extra = j(exp, ["tftp://h/abc.img"])
    assert extra.verdict is Verdict.FAILED and extra.assertions[0]["holds"] is False


def test_the_expected_vs_observed_text_shows_grounds_and_agreement() -> None:
    from framework.runner.evidence import expected_vs_observed
    from tests.records.samples import case

    r = j(EXP, [FW, CFG.replace("8F", "8f")])
    text = expected_vs_observed(case(verdict="observed", matches_core=False,
                                     assertions=list(r.assertions), notes=list(r.notes)))
    assert "verdict   observed (differs from the core)" in text
    assert "does not hold: configuration: expected" in text
    assert 'ground field: field captures' in text
    assert "(matches the core)" in expected_vs_observed(case(verdict="observed",
                                                             matches_core=True))


def test_a_mac_in_the_firmware_name_is_checked_too() -> None:
    exp = resolve({160: b"http://h/<MAC>.img;<MODEL>.cfg"}, PHONE)
    assert exp.firmware_url == "http://h/00908F000001.img"
    r = j(exp, ["http://h/00908f000001.img", "http://h/440HD.cfg"])
    assert r.verdict is Verdict.FAILED
    assert r.reason == ("firmware: expected http://h/00908F000001.img, requested "
                        "http://h/00908f000001.img (MAC case differs)")
