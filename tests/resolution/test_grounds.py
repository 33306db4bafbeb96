"""Grounds (issue 16): every assertion says why it is expected; the profile says which
grounds give verdicts; docs/GROUNDS.md is the profiles' table, word for word."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.cli import main
from framework.resolution import (
    GROUNDS,
    RULES,
    PhoneIdentity,
    Promise,
    ResolutionInputError,
    assertions,
    get_profile,
    resolve,
)
from framework.resolution.grounds import load_grounds
from framework.resolution.groundsdoc import DOC, markdown

ROOT = Path(__file__).resolve().parents[2]
EXCERPT = " ".join(next((ROOT / "docs" / "manual").glob("*.txt")).read_text().split())
PHONE = PhoneIdentity("440HD", "00908F9D8992")
P22 = get_profile("2.2")


def test_docs_grounds_table_is_the_profiles_table() -> None:
    assert DOC.read_text(encoding="utf-8") == markdown(), (
        "docs/GROUNDS.md is stale: python -m framework.resolution.groundsdoc --write")


def test_every_rule_has_a_ground() -> None:
    assert set(RULES) <= set(GROUNDS)


@pytest.mark.parametrize("gid", sorted(g for g in GROUNDS if GROUNDS[g].excerpt))
def test_an_excerpt_quote_is_the_manual_word_for_word(gid: str) -> None:
    assert " ".join(GROUNDS[gid].quote.split()) in EXCERPT


@pytest.mark.parametrize("gid", sorted(g for g in GROUNDS if GROUNDS[g].kind == "manual"))
def test_a_manual_quote_is_verbatim_or_says_where_it_comes_from(gid: str) -> None:
    g = GROUNDS[gid]
    assert g.excerpt or "design/PROVISIONING.md" in g.source or "not in the seed" in g.source


@pytest.mark.parametrize(("text", "message"), [
    ('[[ground]]\nid = "a"\nkind = "rumour"\nsource = "s"\nquote = "q"\n',
     "ground a: kind 'rumour' is not one of manual, field, lab"),
    ('[[ground]]\nid = "a"\nkind = "lab"\nsource = "s"\n', "ground a: keys must be"),
    ('[[ground]]\nid = "a"\nkind = "lab"\nsource = "s"\nquote = " "\n', "empty source or quote"),
    ('[[ground]]\nid = "a"\nkind = "lab"\nsource = "s"\nquote = "q"\n' * 2, "appears twice"),
])
def test_a_bad_ground_row_is_named(text: str, message: str) -> None:
    with pytest.raises(ResolutionInputError, match=r"^grounds\.toml: .*" + message):
        load_grounds(text)


def _by_id(options: dict[int, bytes], profile: object = P22) -> dict[str, object]:
    r = resolve(options, PHONE, profile)  # type: ignore[arg-type]
    interp = (profile if not isinstance(profile, str) else get_profile(profile)).interpretation  # type: ignore[union-attr]
    return {a.id: a for a in assertions(r, interp, PHONE.mac)}


def test_a_promised_row_judges_manual_and_field_grounds_by_default() -> None:
    checks = _by_id({66: b"Audiocodes.com"})
    assert list(checks) == ["request/firmware", "request/configuration", "mac-case", "order",
                            "nothing-else"]
    fw = checks["request/firmware"]
    assert fw.judged and fw.ground.kind == "manual"  # type: ignore[attr-defined]
    assert "Tftp://audiocodes.com/<hardware type>.img" in fw.ground.quote  # type: ignore[attr-defined]
    mac = checks["mac-case"]
    assert mac.judged and mac.ground.kind == "field"  # type: ignore[attr-defined]
    assert mac.expected == "00908F9D8992 (upper case)"  # type: ignore[attr-defined]


def test_judged_grounds_manual_leaves_the_field_ground_observed() -> None:
    checks = _by_id({66: b"Audiocodes.com"}, P22.with_switches(judged_grounds="manual"))
    assert not checks["mac-case"].judged  # type: ignore[attr-defined]
    assert checks["request/firmware"].judged  # type: ignore[attr-defined]


def test_an_unpromised_case_judges_nothing() -> None:
    checks = _by_id({66: b"192.0.2.1", 67: b"abc.img"})  # one name in 67: no table row
    assert not any(a.judged for a in checks.values())  # type: ignore[attr-defined]
    assert checks["request/firmware"].ground.id == "T10-2/r3-host-67-names"  # type: ignore[attr-defined]


@pytest.mark.parametrize("opt67", [None, b"x.img;y.cfg"])
def test_names_after_a_bare_host_are_promised_by_the_general_comment(
        opt67: bytes | None) -> None:
    options = {66: b"192.168.0.11/abc.img;efg.cfg"} | ({67: opt67} if opt67 else {})
    r = resolve(options, PHONE)
    assert (r.rule, r.promise) == ("T10-2/x-host-66-names", Promise.PROMISED)
    assert (r.firmware_url, r.config_url) == ("tftp://192.168.0.11/abc.img",
                                              "tftp://192.168.0.11/efg.cfg")
    ground = GROUNDS["T10-2/x-host-66-names"]
    assert ground.kind == "manual" and ground.quote.startswith("If any file name exists")
    assert resolve(options, PHONE, "3.4").promise is Promise.PENDING


def test_nothing_expected_has_one_assertion_grounded_in_row_1() -> None:
    checks = _by_id({66: b"", 67: b"abc.img;efg.cfg"})
    assert list(checks) == ["nothing-else"]
    assert "When Option 66 doesn’t exist" in checks["nothing-else"].ground.quote  # type: ignore[attr-defined]


# --- Option 43: one format promised per profile (item 3) --------------------------------

TLV = b"\x01\x10http://h43/a.img"


@pytest.mark.parametrize("promised", ["url-string", "vendor-tlv"])
def test_exactly_one_option43_format_is_promised(promised: str) -> None:
    prof = P22.with_switches(option43_promised=promised, option43_format="auto")
    string = resolve({43: b"http://h43/a.img"}, PHONE, prof)
    tlv = resolve({43: TLV}, PHONE, prof)
    assert string.firmware_url == tlv.firmware_url == "http://h43/a.img"
    assert [string.promise is Promise.PROMISED, tlv.promise is Promise.PROMISED] == \
        [promised == "url-string", promised == "vendor-tlv"]
    other = tlv if promised == "url-string" else string
    assert other.unpromised_by[0].endswith(
        f"switch option43_promised={promised} promises 43/{promised} only")


def test_the_default_option43_reading_is_grounded_in_the_manual_sentence() -> None:
    assert P22.interpretation.option43_promised == "url-string"
    g = GROUNDS["43/url-string"]
    assert g.kind == "manual" and g.quote == "Phones can get a provisioning URL from DHCP Option 43."
    assert GROUNDS["43/vendor-tlv"].kind == "lab"


# --- reasons name what made a case unpromised (item 8) ----------------------------------

def test_a_malformed_66_falling_to_43_names_the_malformed_66() -> None:
    r = resolve({66: b"bad host!", 43: b"http://h43/a.img"}, PHONE)
    assert r.rule == "43/url-string+T10-1/firmware" and r.promise is Promise.UNSPECIFIED
    assert r.unpromised_by == ("T10-2/x-malformed: unspecified (66 is not a usable server "
                               "address: no URL from 66/67)",)
    assert "Not promised because of T10-2/x-malformed" in r.explanation


def test_a_pending_row_names_the_pending_mark() -> None:
    r = resolve({66: b"http://h"}, PHONE, "3.4")
    assert r.unpromised_by == ("T10-2/r4-protocol-host: '[Support pending]' in profile 3.4 "
                               "(pending T10-2/r4-protocol-host)",)
    assert resolve({66: b"http://h"}, PHONE).unpromised_by == ()


def test_resolve_json_lists_every_assertion_with_its_ground(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resolve", "--model", "440HD", "--mac", "00908F9D8992", "--option",
                 "66=http://Audiocodes.com", "--option", "67=abc.img;efg.cfg", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    ids = [a["id"] for a in out["assertions"]]
    assert ids == ["request/firmware", "request/configuration", "order", "nothing-else",
                   "identification/60", "identification/77", "identification/55"]
    for a in out["assertions"]:
        assert set(a) == {"id", "what", "expected", "judged", "ground"}
        assert set(a["ground"]) == {"kind", "source", "quote"} and a["judged"] is True
    assert out["assertions"][0]["expected"] == "http://audiocodes.com/abc.img"
    assert out["unpromised_by"] == []
