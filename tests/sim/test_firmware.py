"""The virtual firmware's URL choice against the manual's own examples (Admin Manual 2.2.8,
10.2.2-10.2.3, Tables 10-1 and 10-2), and each catalogue deviation against the faithful one.

These are pure checks of framework.sim.firmware; test_deviations_on_wire.py shows the same
differences through independent servers.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.sim.firmware import (
    DEFAULT_SETTINGS,
    DEVIATIONS,
    REQUEST_DEVIATIONS,
    SETTING_METHOD,
    SETTING_STATIC_CONFIGURATION_URL,
    SETTING_STATIC_FIRMWARE_URL,
    Faithful400HD,
    FirmwareConfigError,
    ProvisioningPlan,
    load_firmware_class,
)
from tests.sim.deviation_cases import CASES, DeviationCase, expand

MAC = "001122334455"      # the manual's example MAC
FIELD_MAC = "00908F9D8992"  # a field capture's MAC (hex letters: case matters)


def urls(options: Mapping[int, bytes], deviations: tuple[str, ...] = (), model: str = "440HD",
         mac: str = MAC, **settings: str) -> list[str]:
    plan = Faithful400HD(deviations).plan(options, model, mac, {**DEFAULT_SETTINGS, **{
        k.replace("__", "/"): v for k, v in settings.items()}})
    return [r.url for r in plan.requests]


# -- Table 10-1: Option 160, four forms ----------------------------------------------------

@pytest.mark.parametrize(("option160", "expected"), [
    ("ftp://192.168.2.1",
     ["ftp://192.168.2.1/440HD.img", "ftp://192.168.2.1/001122334455.cfg"]),
    ("tftp://192.168.2.1/different_firmware_name.img",
     ["tftp://192.168.2.1/different_firmware_name.img", "tftp://192.168.2.1/001122334455.cfg"]),
    ("http://192.168.2.1/different_firmware_name.img; <MODEL>_<MAC>_conf.cfg",
     ["http://192.168.2.1/different_firmware_name.img",
      "http://192.168.2.1/440HD_001122334455_conf.cfg"]),
    ("https://192.168.2.1/;<MODEL>_<MAC>_conf.cfg",
     ["https://192.168.2.1/440HD.img", "https://192.168.2.1/440HD_001122334455_conf.cfg"]),
], ids=["server", "firmware", "firmware;config", "/;config"])
def test_table_10_1_examples(option160: str, expected: list[str]) -> None:
    assert urls({160: option160.encode()}) == expected


def test_subdirectory_keeps_config_next_to_firmware() -> None:
    """[F] integrators' ``http://host/420HD/420HD.img;420HD.cfg``."""
    assert urls({160: b"http://h/420HD/420HD.img;420HD.cfg"}, model="420HD") == [
        "http://h/420HD/420HD.img", "http://h/420HD/420HD.cfg"]


def test_config_name_is_relative_to_the_firmware_directory_unless_absolute() -> None:
    assert urls({160: b"http://h/a/fw.img;sub/c.cfg"})[1] == "http://h/a/sub/c.cfg"
    assert urls({160: b"http://h/a/fw.img;/top/c.cfg"})[1] == "http://h/top/c.cfg"


def test_trailing_slash_is_a_directory_with_default_names() -> None:
    assert urls({160: b"http://h/dir/sub/"}, mac=FIELD_MAC) == [
        "http://h/dir/sub/440HD.img", "http://h/dir/sub/00908F9D8992.cfg"]


def test_mac_is_upper_case_like_field_captures() -> None:
    assert urls({160: b"tftp://h"}, mac="00908f9d8992")[1] == "tftp://h/00908F9D8992.cfg"


def test_nul_padding_and_blanks_are_ignored() -> None:
    assert urls({160: b"  http://h/a.img;b.cfg\r\n\x00\x00\x00"}) == [
        "http://h/a.img", "http://h/b.cfg"]


def test_host_is_lower_cased_and_port_and_user_kept() -> None:
    assert urls({160: b"FTP://user:pw@Prov.Example.COM:2121/fw.img"}) == [
        "ftp://user:pw@prov.example.com:2121/fw.img",
        "ftp://user:pw@prov.example.com:2121/001122334455.cfg"]


# -- Table 10-2: Option 66/67 -----------------------------------------------------------------

@pytest.mark.parametrize(("option66", "option67", "expected"), [
    ("Audiocodes.com", None,
     ["tftp://audiocodes.com/440HD.img", "tftp://audiocodes.com/001122334455.cfg"]),
    ("192.168.0.11", None,
     ["tftp://192.168.0.11/440HD.img", "tftp://192.168.0.11/001122334455.cfg"]),
    ("Audiocodes.com", "abc.img;efg.cfg",
     ["tftp://audiocodes.com/abc.img", "tftp://audiocodes.com/efg.cfg"]),
    ("http://Audiocodes.com", None,
     ["http://audiocodes.com/440HD.img", "http://audiocodes.com/001122334455.cfg"]),
    ("http://192.168.0.11", "abc.img;efg.cfg",
     ["http://192.168.0.11/abc.img", "http://192.168.0.11/efg.cfg"]),
    ("http://Audiocodes.com/abc.img;efg.cfg", "xyz.img;uvw.cfg",
     ["http://audiocodes.com/abc.img", "http://audiocodes.com/efg.cfg"]),
], ids=["host-name", "host-ip", "host+67", "proto-host", "proto-host+67", "names-ignore-67"])
def test_table_10_2_rows(option66: str, option67: str | None, expected: list[str]) -> None:
    options = {66: option66.encode()}
    if option67 is not None:
        options[67] = option67.encode()
    assert urls(options) == expected


@pytest.mark.parametrize("option66", [None, b"", b"\x00\x00"], ids=["absent", "empty", "nul"])
def test_table_10_2_no_option_66_means_no_url(option66: bytes | None) -> None:
    options = {67: b"abc.img;efg.cfg"}
    if option66 is not None:
        options[66] = option66
    plan = Faithful400HD().plan(options, "440HD", MAC, DEFAULT_SETTINGS)
    assert plan.source == "no provisioning option"
    assert [r.purpose for r in plan.requests] == ["sip-pnp", "redirect"]


# -- Option 43 and precedence (10.2.2, 10.2.3) -------------------------------------------------

def test_option_43_plain_url() -> None:
    assert urls({43: b"https://h/a.img;b.cfg"}) == ["https://h/a.img", "https://h/b.cfg"]


def test_option_43_vendor_suboption_with_configured_code() -> None:
    url = b"http://h/a.img;b.cfg"
    tlv = bytes([1, 3]) + b"xyz" + bytes([7, len(url)]) + url + b"\xff"
    assert urls({43: tlv}, provisioning__option43_suboption="7") == [
        "http://h/a.img", "http://h/b.cfg"]
    assert urls({43: tlv})[0].startswith("sip:")  # sub-option 1 holds no URL: no source


def test_precedence_160_then_66_then_43() -> None:
    options = {160: b"http://a/1.img", 66: b"http://b/2.img", 43: b"http://c/3.img"}
    assert urls(options)[0] == "http://a/1.img"
    assert urls({k: v for k, v in options.items() if k != 160})[0] == "http://b/2.img"
    assert urls({43: options[43]})[0] == "http://c/3.img"


@pytest.mark.parametrize("bad160", [b"gopher://a/1.img", b"a/1.img", b"http://", b"http://h:x/"])
def test_a_160_without_usable_url_falls_through(bad160: bytes) -> None:
    assert urls({160: bad160, 66: b"b"})[0] == "tftp://b/440HD.img"


def test_url_option_override() -> None:
    options = {160: b"http://a/160.img", 150: b"http://b/150.img"}
    assert urls(options, provisioning__url_option_value="150")[0] == "http://b/150.img"


def test_methods_static_and_disable() -> None:
    options = {160: b"http://a/1.img"}
    assert urls(options, provisioning__method="disable") == []
    assert urls(options, provisioning__method="static",
                provisioning__firmware__url="http://s/fw/<MODEL>.img",
                provisioning__configuration__url="tftp://s/<MAC>.cfg") == [
        "http://s/fw/440HD.img", "tftp://s/001122334455.cfg"]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([43, 66, 67, 150, 160]), st.binary(max_size=80)),
       st.sampled_from(sorted(DEVIATIONS)))
def test_any_option_bytes_give_a_plan(options: dict[int, bytes], deviation: str) -> None:
    """Garbage in the options must never crash the firmware (a phone does not crash)."""
    for firmware in (Faithful400HD(), Faithful400HD([deviation])):
        plan = firmware.plan(options, "440HD", MAC, DEFAULT_SETTINGS)
        assert isinstance(plan, ProvisioningPlan)
        assert all(r.scheme in ("tftp", "http", "https", "ftp", "sip") for r in plan.requests)


# -- the deviation catalogue -----------------------------------------------------------------

def test_catalogue_is_documented_and_large_enough() -> None:
    assert len(DEVIATIONS) >= 12
    for deviation in DEVIATIONS.values():
        assert deviation.changes and deviation.manual
    assert {c.deviation for c in CASES} == REQUEST_DEVIATIONS
    assert set(DEVIATIONS) - REQUEST_DEVIATIONS == {"reboot-after-config"}


def test_model_case_lowered_only_in_configuration_names() -> None:
    option = {160: b"http://192.0.2.1/<MODEL>.img;<MODEL>_<MAC>_conf.cfg"}
    assert urls(option, ("model-case-lowered",)) == [
        "http://192.0.2.1/440HD.img", "http://192.0.2.1/440hd_001122334455_conf.cfg"]
    assert urls({160: b"http://192.0.2.1/;<MODEL>.cfg"}, ("model-case-lowered",)) == [
        "http://192.0.2.1/440HD.img", "http://192.0.2.1/440hd.cfg"]
    static = urls({}, ("model-case-lowered",), **{
        SETTING_METHOD.replace("/", "__"): "static",
        SETTING_STATIC_FIRMWARE_URL.replace("/", "__"): "http://h/<MODEL>.img",
        SETTING_STATIC_CONFIGURATION_URL.replace("/", "__"): "http://h/<MODEL>.cfg"})
    assert static == ["http://h/440HD.img", "http://h/440hd.cfg"]


def test_late_request_repeats_the_configuration_at_the_end() -> None:
    options = {160: b"http://192.0.2.1/fw.img;cfg.cfg"}
    plan = Faithful400HD(["late-request", "config-before-firmware"]).plan(
        options, "440HD", MAC, DEFAULT_SETTINGS)
    assert [(r.path, r.late) for r in plan.requests] == [
        ("/cfg.cfg", False), ("/fw.img", False), ("/cfg.cfg", True)]
    assert not any(r.late for r in Faithful400HD().plan(options, "440HD", MAC,
                                                        DEFAULT_SETTINGS).requests)
    # No configuration request in the cycle: nothing to repeat.
    for deviations, opts in ((["late-request"], {}),
                             (["late-request", "config-never-requested"], options)):
        plan = Faithful400HD(deviations).plan(opts, "440HD", MAC, DEFAULT_SETTINGS)
        assert plan.requests and not any(r.late for r in plan.requests)


def test_reboot_after_config_is_a_flag_not_a_request() -> None:
    options = {160: b"http://192.0.2.1/fw.img;cfg.cfg"}
    faithful = Faithful400HD().plan(options, "440HD", MAC, DEFAULT_SETTINGS)
    deviant = Faithful400HD(["reboot-after-config"]).plan(options, "440HD", MAC,
                                                          DEFAULT_SETTINGS)
    assert deviant.requests == faithful.requests
    assert deviant.restart_after_configuration and not faithful.restart_after_configuration


def observables(plan: ProvisioningPlan) -> tuple[list[str], set[str]]:
    """What independent servers would see: file requests in order, and DNS names."""
    files = [f"{r.scheme}:{r.path if r.scheme != 'tftp' else r.path.lstrip('/')}"
             for r in plan.requests if r.purpose in ("firmware", "configuration")]
    names = {r.host for r in plan.requests if r.purpose != "sip-pnp"
             and not r.host.replace(".", "").isdigit()}
    return files, names


def split(expected: list[str]) -> tuple[list[str], set[str]]:
    return ([e for e in expected if not e.startswith("dns:")],
            {e[4:] for e in expected if e.startswith("dns:")})


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.deviation)
def test_each_deviation_changes_the_plan_as_named(case: DeviationCase) -> None:
    settings = {**DEFAULT_SETTINGS, **case.settings}
    faithful = Faithful400HD().plan(case.options, "440HD", FIELD_MAC, settings)
    deviant = Faithful400HD([case.deviation]).plan(case.options, "440HD", FIELD_MAC, settings)
    assert observables(faithful) == split(expand(case.faithful, FIELD_MAC))
    assert observables(deviant) == split(expand(case.deviant, FIELD_MAC))
    assert observables(faithful) != observables(deviant)


def test_unknown_deviation_and_bad_class_are_named() -> None:
    with pytest.raises(FirmwareConfigError, match=r"unknown deviation.*no-such-thing"):
        Faithful400HD(["no-such-thing"])
    with pytest.raises(FirmwareConfigError, match=r"package\.module:ClassName"):
        load_firmware_class("framework.sim.firmware")
    with pytest.raises(FirmwareConfigError, match="cannot be imported"):
        load_firmware_class("framework.nothing_here:X")
    assert load_firmware_class("framework.sim.firmware:Faithful400HD") is Faithful400HD


def test_firmware_never_imports_the_resolution_core() -> None:
    """framework/sim must stay independent of framework/resolution (ARCHITECTURE.md)."""
    import pathlib
    import re

    sim = pathlib.Path(__file__).resolve().parents[2] / "framework" / "sim"
    pattern = re.compile(r"^\s*(from|import)\s+(framework\.resolution|\.\.resolution)", re.M)
    offenders = [p.name for p in sim.rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
