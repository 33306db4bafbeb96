"""Option 160 > 66/67 > 43, fall-through, the URL option override and provisioning/method."""

from __future__ import annotations

import itertools

import pytest

from framework.resolution import (
    PhoneIdentity,
    PhoneSettings,
    ProvisioningMethod,
    ResolutionInputError,
    get_profile,
    resolve,
)

PHONE = PhoneIdentity("440HD", "001122334455")
SOURCES = {
    "160": {160: b"http://h160.example/a160.img;c160.cfg"},
    "66/67": {66: b"h66.example", 67: b"a66.img;c66.cfg"},
    "43": {43: b"ftp://h43.example/a43.img;c43.cfg"},
}
ORDER = ["160", "66/67", "43"]


@pytest.mark.parametrize(
    "present",
    [c for n in range(1, 4) for c in itertools.combinations(ORDER, n)],
    ids=lambda c: "+".join(c),
)
def test_highest_present_source_wins(present: tuple[str, ...]) -> None:
    options: dict[int, bytes] = {}
    for s in present:
        options.update(SOURCES[s])
    result = resolve(options, PHONE)
    winner = present[0]
    assert result.source == winner
    assert result.promised
    assert result.firmware_url is not None and winner.split("/")[0] in result.firmware_url


@pytest.mark.parametrize("broken_160", [b"", b"\xff\xfe", b"sftp://h/x.img", b"http://"],
                         ids=["empty", "non-ascii", "unknown-protocol", "no-host"])
def test_falls_through_when_160_yields_no_url(broken_160: bytes) -> None:
    result = resolve({160: broken_160, 66: b"h66.example"}, PHONE)
    assert result.source == "66/67"
    assert result.firmware_url == "tftp://h66.example/440HD.img"
    # The fall-through over an undocumented 160 value is not promised by the manual.
    assert not result.promised


def test_falls_through_66_empty_to_43() -> None:
    result = resolve({66: b"", 67: b"a.img;b.cfg", 43: b"http://h43/x.img"}, PHONE)
    assert result.source == "43"
    assert result.firmware_url == "http://h43/x.img"
    assert result.promised  # empty 66 is Table 10-2 row 1: promised no URL


def test_empty_url_option_stop_switch() -> None:
    profile = get_profile("2.2").with_switches(empty_url_option="stop")
    result = resolve({160: b"", 66: b"h66.example"}, PHONE, profile)
    assert result.source is None and result.firmware_url is None


def test_url_option_override_reads_that_option_and_ignores_160() -> None:
    options = {160: b"http://h160/a.img", 161: b"https://h161/b.img;c.cfg"}
    result = resolve(options, PHONE, settings=PhoneSettings(url_option=161))
    assert result.source == "161"
    assert result.firmware_url == "https://h161/b.img"
    assert "Option 160 is ignored" in result.explanation
    # With the override, a lone 160 is not read at all.
    only160 = resolve({160: b"http://h160/a.img"}, PHONE, settings=PhoneSettings(url_option=161))
    assert only160.source is None


def test_override_still_beats_66() -> None:
    result = resolve({224: b"tftp://h224", 66: b"h66"}, PHONE,
                     settings=PhoneSettings(url_option=224))
    assert result.source == "224"
    assert result.firmware_url == "tftp://h224/440HD.img"


@pytest.mark.parametrize("bad", [0, 255, 43, 66, 67])
def test_bad_url_option_is_a_clear_error(bad: int) -> None:
    with pytest.raises(ResolutionInputError, match="url_option"):
        PhoneSettings(url_option=bad)


def test_static_method_ignores_dhcp() -> None:
    settings = PhoneSettings(method=ProvisioningMethod.STATIC,
                             static_firmware_url="http://static/fw.img",
                             static_config_url="http://static/c.cfg")
    result = resolve(SOURCES["160"], PHONE, settings=settings)
    assert (result.source, result.firmware_url, result.rule) == (None, "http://static/fw.img",
                                                                "method/static")


def test_disabled_method_requests_nothing() -> None:
    result = resolve(SOURCES["160"], PHONE,
                     settings=PhoneSettings(method=ProvisioningMethod.DISABLE))
    assert result.requests == () and result.rule == "method/disable"


def test_no_options_requests_nothing_and_that_is_promised() -> None:
    result = resolve({}, PHONE)
    assert result.source is None and result.requests == () and result.promised


def test_3_4_option_43_alone_is_pending_but_ignored_43_is_fine() -> None:
    alone = resolve(SOURCES["43"], PHONE, "3.4")
    assert alone.promise.value == "pending"
    beaten = resolve({**SOURCES["66/67"], **SOURCES["43"]}, PHONE, "3.4")
    assert beaten.source == "66/67" and beaten.promised
