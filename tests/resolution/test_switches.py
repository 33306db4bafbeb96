"""Each named switch changes the expectation as documented; malformed input is defined."""

from __future__ import annotations

import pytest

from framework.resolution import (
    PhoneIdentity,
    Profile,
    ResolutionInputError,
    get_profile,
    profile_for_version,
    resolve,
    urls_match,
)

PHONE = PhoneIdentity("440HD", "00908f9d8992")
BASE = get_profile("2.2")


def fw_cfg(options: dict[int, bytes], profile: Profile = BASE) -> tuple[str | None, str | None]:
    r = resolve(options, PHONE, profile)
    return r.firmware_url, r.config_url


def test_mac_case_switch() -> None:
    assert fw_cfg({66: b"h"})[1] == "tftp://h/00908F9D8992.cfg"
    assert fw_cfg({66: b"h"}, BASE.with_switches(mac_case="lower"))[1] == "tftp://h/00908f9d8992.cfg"


def test_host_case_switch() -> None:
    assert fw_cfg({66: b"Audiocodes.COM"})[0] == "tftp://audiocodes.com/440HD.img"
    kept = BASE.with_switches(host_case="as-given")
    assert fw_cfg({66: b"Audiocodes.COM"}, kept)[0] == "tftp://Audiocodes.COM/440HD.img"


def test_protocol_case_is_typography() -> None:
    assert fw_cfg({66: b"Tftp://Audiocodes.com"})[0] == "tftp://audiocodes.com/440HD.img"
    assert fw_cfg({160: b"HTTPS://h/a.img"})[0] == "https://h/a.img"


def test_default_protocol_switch() -> None:
    assert fw_cfg({66: b"h"}, BASE.with_switches(default_protocol="http"))[0] == "http://h/440HD.img"


def test_port_is_kept() -> None:
    assert fw_cfg({66: b"http://h:8080"})[0] == "http://h:8080/440HD.img"
    assert fw_cfg({66: b"192.0.2.1:6969"})[0] == "tftp://192.0.2.1:6969/440HD.img"


def test_ipv6_literal_switch() -> None:
    assert fw_cfg({160: b"http://[2001:db8::1]:8080/a.img"})[0] == "http://[2001:db8::1]:8080/a.img"
    r = resolve({160: b"http://[2001:db8::1]/a.img"}, PHONE,
                BASE.with_switches(ipv6_literal="no-url"))
    assert r.source is None and r.considered[0].rule == "T10-1/malformed"


@pytest.mark.parametrize(("name", "how", "fw", "cfg"), [
    ("abc.img", "by-extension", "tftp://h/abc.img", "tftp://h/00908F9D8992.cfg"),
    ("efg.cfg", "by-extension", "tftp://h/440HD.img", "tftp://h/efg.cfg"),
    ("efg.cfg", "firmware", "tftp://h/efg.cfg", "tftp://h/00908F9D8992.cfg"),
    ("abc.img", "configuration", "tftp://h/440HD.img", "tftp://h/abc.img"),
])
def test_option67_single_name_switch(name: str, how: str, fw: str, cfg: str) -> None:
    profile = BASE.with_switches(option67_single_name=how)
    r = resolve({66: b"h", 67: name.encode()}, PHONE, profile)
    assert (r.firmware_url, r.config_url) == (fw, cfg)
    assert r.rule == "T10-2/r3-host-67-names+T10-2/x-67-single-name"
    assert not r.promised


def test_option67_semicolon_alone_gives_defaults() -> None:
    assert fw_cfg({66: b"h", 67: b";"}) == ("tftp://h/440HD.img", "tftp://h/00908F9D8992.cfg")
    assert fw_cfg({66: b"h", 67: b";c.cfg"}) == ("tftp://h/440HD.img", "tftp://h/c.cfg")


def test_trailing_nul_switch() -> None:
    assert fw_cfg({66: b"h\x00", 67: b"a.img;b.cfg\x00"}) == ("tftp://h/a.img", "tftp://h/b.cfg")
    strict = BASE.with_switches(trailing_nul="malformed")
    r = resolve({66: b"h\x00"}, PHONE, strict)
    assert r.source is None and "NUL" in r.explanation


def test_nul_inside_is_malformed() -> None:
    r = resolve({66: b"h\x00x"}, PHONE)
    assert r.source is None and "NUL byte inside" in r.explanation


def test_whitespace_switch() -> None:
    assert fw_cfg({160: b"  http://h/a.img ;  b.cfg  "}) == ("http://h/a.img", "http://h/b.cfg")
    keep = BASE.with_switches(whitespace="keep")
    assert fw_cfg({160: b"http://h/a.img; b.cfg"}, keep)[1] == "http://h/ b.cfg"


def test_placeholders_switch() -> None:
    opts = {66: b"h", 67: b"<MODEL>.img;<MAC>.cfg"}
    assert fw_cfg(opts) == ("tftp://h/440HD.img", "tftp://h/00908F9D8992.cfg")
    only160 = BASE.with_switches(placeholders="url-option-only")
    assert fw_cfg(opts, only160) == ("tftp://h/<MODEL>.img", "tftp://h/<MAC>.cfg")


def test_url_option_bare_host_switch() -> None:
    assert fw_cfg({160: b"192.0.2.1/a.img"})[0] == "tftp://192.0.2.1/a.img"
    r = resolve({160: b"192.0.2.1/a.img", 66: b"h"}, PHONE,
                BASE.with_switches(url_option_bare_host="no-url"))
    assert r.source == "66/67"


def test_extra_names_switch() -> None:
    assert fw_cfg({160: b"http://h/a.img;b.cfg;c"}) == ("http://h/a.img", "http://h/b.cfg")
    r = resolve({160: b"http://h/a.img;b.cfg;c"}, PHONE, BASE.with_switches(extra_names="no-url"))
    assert r.source is None


def test_max_value_length_switch() -> None:
    long = b"http://h/" + b"a" * 300 + b".img"
    assert fw_cfg({160: long})[0] == long.decode()
    r = resolve({160: long}, PHONE, BASE.with_switches(max_value_length=255))
    assert r.source is None and "longer than max_value_length" in r.explanation


@pytest.mark.parametrize(("fmt", "value", "fw"), [
    ("url-string", b"http://h43/a.img", "http://h43/a.img"),
    ("vendor-tlv", bytes([1, 16]) + b"http://h43/a.img", "http://h43/a.img"),
    ("auto", b"http://h43/a.img", "http://h43/a.img"),
    ("auto", bytes([2, 1, 0, 1, 16]) + b"http://h43/a.img" + bytes([255]), "http://h43/a.img"),
])
def test_option43_format_switch(fmt: str, value: bytes, fw: str) -> None:
    r = resolve({43: value}, PHONE, BASE.with_switches(option43_format=fmt))
    assert r.source == "43" and r.firmware_url == fw


def test_option43_suboption_code() -> None:
    value = bytes([7, 10]) + b"tftp://h43"
    profile = BASE.with_switches(option43_format="vendor-tlv", option43_suboption=7)
    assert fw_cfg({43: value}, profile)[0] == "tftp://h43/440HD.img"
    r = resolve({43: value}, PHONE, BASE.with_switches(option43_format="vendor-tlv"))
    assert r.source is None and "lack URL sub-option 1" in r.explanation


def test_truncated_tlv_is_reported() -> None:
    r = resolve({43: bytes([1, 40]) + b"http://x"}, PHONE,
                BASE.with_switches(option43_format="vendor-tlv"))
    assert r.source is None and "claims 40 bytes" in r.explanation


def test_bad_switch_values_are_clear_errors() -> None:
    with pytest.raises(ResolutionInputError, match="mac_case='sideways'"):
        BASE.with_switches(mac_case="sideways")
    with pytest.raises(ResolutionInputError, match="unknown switch 'nope'"):
        BASE.with_switches(nope=1)


def test_profile_round_trip_and_validation() -> None:
    data = BASE.with_switches(mac_case="lower").to_dict() | {"name": "observed-2.2.9"}
    again = Profile.from_dict(data)
    assert again.interpretation.mac_case == "lower" and again.name == "observed-2.2.9"
    with pytest.raises(ResolutionInputError, match=r"profile\.pending: unknown rule id"):
        Profile.from_dict({"name": "x", "pending": ["T99/nothing"]})
    with pytest.raises(ResolutionInputError, match=r"profile\.switches: switch host_case"):
        Profile.from_dict({"name": "x", "switches": {"host_case": "upper"}})


def test_profile_for_version() -> None:
    assert profile_for_version("2.2.8.61").name == "2.2"
    assert profile_for_version("3.4.3").name == "3.4"
    assert profile_for_version("UC_3.4.6.604.1").name == "3.4"  # the UC firmware line
    with pytest.raises(ResolutionInputError, match=r"no behaviour profile for '9\.9'"):
        profile_for_version("9.9.1")


def test_bad_identity_is_a_clear_error() -> None:
    with pytest.raises(ResolutionInputError, match="model 'HD440'"):
        PhoneIdentity("HD440", "001122334455")
    with pytest.raises(ResolutionInputError, match="MAC '00:11'"):
        PhoneIdentity("440HD", "00:11")


def test_bad_options_argument_is_a_clear_error() -> None:
    with pytest.raises(ResolutionInputError, match="option 66: expected bytes"):
        resolve({66: "text"}, PHONE)  # type: ignore[dict-item]
    with pytest.raises(ResolutionInputError, match="option code 300"):
        resolve({300: b""}, PHONE)


def test_urls_match_policies() -> None:
    exact = BASE.interpretation
    loose = BASE.with_switches(mac_compare="case-insensitive",
                               host_compare="case-insensitive").interpretation
    byte_exact = BASE.with_switches(url_compare="byte-exact").interpretation
    byte_host = BASE.with_switches(url_compare="byte-exact",
                                   host_compare="case-insensitive").interpretation
    mac = "00908F9D8992"
    assert urls_match("tftp://h/00908F9D8992.cfg", "TFTP://h/00908F9D8992.cfg", mac=mac, interp=exact)
    assert not urls_match("tftp://h/00908F9D8992.cfg", "tftp://h/00908f9d8992.cfg", mac=mac,
                          interp=exact)
    assert urls_match("tftp://h/00908F9D8992.cfg", "tftp://h/00908f9d8992.cfg", mac=mac, interp=loose)
    # RFC 3986 6.2.2.1 by default: host case is insignificant; byte-exact is a switch.
    assert urls_match("tftp://h/a.img", "tftp://H/a.img", mac=mac, interp=exact)
    assert not urls_match("tftp://h/a.img", "tftp://H/a.img", mac=mac, interp=byte_exact)
    assert urls_match("tftp://h/a.img", "tftp://H/a.img", mac=mac, interp=byte_host)
    assert not urls_match("tftp://h/a.img", "TFTP://h/a.img", mac=mac, interp=byte_exact)
    assert urls_match("tftp://h/a.img", "tftp://H/a.img", mac=mac, interp=loose)
    assert not urls_match("tftp://h/a.img", "tftp://h/A.img", mac=mac, interp=loose)


@pytest.mark.parametrize(("options", "quirk"), [
    ({66: b"h\x00", 67: b"a.img;b.cfg"}, "quirk/nul-padding"),
    ({66: b"h", 67: b"a.img;b.cfg\x00"}, "quirk/nul-padding"),
    ({160: b" http://h/a.img;b.cfg"}, "quirk/whitespace"),
    ({160: b"http://h/a.img ;b.cfg"}, "quirk/whitespace"),
    ({160: b"http://h/" + b"d" * 250 + b".img"}, "quirk/long-option"),
])
def test_quirks_make_a_result_unspecified(options: dict[int, bytes], quirk: str) -> None:
    r = resolve(options, PHONE)
    assert quirk in r.rule.split("+")
    assert r.promise.value == "unspecified"
    assert r.firmware_url is not None


def test_documented_space_after_semicolon_is_not_a_quirk() -> None:
    r = resolve({160: b"http://h/a.img; b.cfg"}, PHONE)
    assert r.rule == "T10-1/firmware-config" and r.promised
