"""The virtual firmware's URL choice against the manual's own examples (Admin Manual 2.2.8,
10.2.2-10.2.3, Tables 10-1 and 10-2), and each catalogue deviation against the faithful one.

These are pure checks of framework.sim.firmware; test_deviations_on_wire.py shows the same
differences through independent servers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.sim.config import SimConfigError, load_bench
from framework.sim.firmware import (
    DEFAULT_SETTINGS,
    DEVIATIONS,
    REQUEST_DEVIATIONS,
    SETTING_METHOD,
    SETTING_RANDOM_TIME,
    SETTING_STATIC_CONFIGURATION_URL,
    SETTING_STATIC_FIRMWARE_URL,
    Deviation,
    Faithful400HD,
    FirmwareConfigError,
    PlannedRequest,
    ProvisioningPlan,
    RestartAfterConfiguration,
    Retry,
    Source,
    Wait,
    load_firmware_class,
)
from tests.sim.deviation_cases import CASES, DeviationCase, expand
from tests.sim.harness import phones, rig_document

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
    assert plan.source is Source.SIP_PNP_AND_REDIRECT
    assert plan.summary == "no provisioning option"
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
    # not in the plan: a restart and a second cycle; a TLS client that verifies nothing;
    # a DHCP client that leaves out Option 77
    assert set(DEVIATIONS) - REQUEST_DEVIATIONS == {"reboot-after-config",
                                                    "trusts-any-certificate",
                                                    "option77-omitted"}


def test_option77_omitted_only_leaves_out_the_user_class() -> None:
    assert Faithful400HD().sends_user_class
    deviant = Faithful400HD(["option77-omitted"])
    assert not deviant.sends_user_class
    options = {66: b"192.0.2.1"}
    assert deviant.plan(options, "440HD", MAC, DEFAULT_SETTINGS).requests == \
        Faithful400HD().plan(options, "440HD", MAC, DEFAULT_SETTINGS).requests


def test_option67_over_bare_host_names_keeps_protocol_names() -> None:
    with_protocol = {66: b"http://192.0.2.1/a66.img;b66.cfg", 67: b"c67.img;d67.cfg"}
    assert urls(with_protocol, ("option67-over-bare-host-names",)) == urls(with_protocol, ())


def test_only_trusts_any_certificate_skips_certificate_verification() -> None:
    assert Faithful400HD().verifies_certificates
    assert all(Faithful400HD({d}).verifies_certificates
               for d in DEVIATIONS if d != "trusts-any-certificate")
    assert not Faithful400HD({"trusts-any-certificate"}).verifies_certificates


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


def test_reboot_after_config_is_an_event_not_a_request() -> None:
    options = {160: b"http://192.0.2.1/fw.img;cfg.cfg"}
    faithful = Faithful400HD().plan(options, "440HD", MAC, DEFAULT_SETTINGS)
    deviant = Faithful400HD(["reboot-after-config"]).plan(options, "440HD", MAC,
                                                          DEFAULT_SETTINGS)
    assert deviant.requests == faithful.requests
    assert deviant.restart_after_configuration and not faithful.restart_after_configuration
    assert deviant.events[-1] == RestartAfterConfiguration()


# -- the plan as a timed sequence of events ----------------------------------------------------

def test_late_request_is_a_retry_event_with_the_phones_delay() -> None:
    plan = Faithful400HD(["late-request"]).plan({160: b"http://192.0.2.1/fw.img;cfg.cfg"},
                                                "440HD", MAC, DEFAULT_SETTINGS)
    *requests, retry = plan.events
    assert [type(e) for e in requests] == [PlannedRequest, PlannedRequest]
    assert isinstance(retry, Retry) and retry.request == requests[1] and retry.after_s is None


@pytest.mark.parametrize(("options", "settings", "source", "summary"), [
    ({160: b"http://h/"}, {}, Source.URL_OPTION, "option 160"),
    ({150: b"http://h/"}, {"provisioning/url_option_value": "150"}, Source.URL_OPTION,
     "option 150"),
    ({66: b"h"}, {}, Source.OPTION_66_67, "option 66/67"),
    ({43: b"http://h/"}, {}, Source.OPTION_43, "option 43"),
    ({}, {SETTING_METHOD: "static", SETTING_STATIC_FIRMWARE_URL: "http://h/f.img"},
     Source.STATIC_URL, "static URLs"),
    ({}, {SETTING_METHOD: "disable"}, Source.DISABLED, "provisioning disabled"),
    ({}, {}, Source.SIP_PNP_AND_REDIRECT, "no provisioning option"),
])
def test_sources_are_an_enum_and_the_console_words_stay_readable(
        options: dict[int, bytes], settings: dict[str, str], source: Source,
        summary: str) -> None:
    plan = Faithful400HD().plan(options, "440HD", MAC, {**DEFAULT_SETTINGS, **settings})
    assert plan.source is source and plan.summary == summary


def test_no_fallthrough_keeps_its_source_and_says_why() -> None:
    plan = Faithful400HD(["no-fallthrough-on-empty-160"]).plan(
        {160: b"gopher://h/", 66: b"h"}, "440HD", MAC, DEFAULT_SETTINGS)
    assert plan.source is Source.URL_OPTION
    assert plan.summary == "option 160 without a usable URL (no fall-through)"
    assert [r.purpose for r in plan.requests] == ["sip-pnp", "redirect"]


@pytest.mark.parametrize(("value", "wait"), [
    ("0", None), ("", None), ("120", 120), ("65535", 65535), ("65536", None), ("-5", None),
    ("soon", None)])
def test_random_provisioning_time_is_a_random_wait_before_the_requests(
        value: str, wait: int | None) -> None:
    options = {160: b"http://192.0.2.1/fw.img;cfg.cfg"}
    plan = Faithful400HD().plan(options, "440HD", MAC,
                                {**DEFAULT_SETTINGS, SETTING_RANDOM_TIME: value})
    faithful = Faithful400HD().plan(options, "440HD", MAC, DEFAULT_SETTINGS)
    assert plan.requests == faithful.requests  # timing never changes the URLs
    if wait is None:
        assert plan.waits == ()
    else:
        assert plan.events[0] == Wait(wait, "random provisioning time", random=True)
    disabled = Faithful400HD().plan(options, "440HD", MAC, {
        **DEFAULT_SETTINGS, SETTING_RANDOM_TIME: "30", SETTING_METHOD: "disable"})
    assert disabled.events == ()  # nothing to ask for: nothing to wait for


def test_the_sims_phones_ship_without_a_random_time() -> None:
    assert DEFAULT_SETTINGS[SETTING_RANDOM_TIME] == "0"


def test_event_values_are_checked() -> None:
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        Wait(-1, "nope")
    with pytest.raises(ValueError, match="after_s"):
        Retry(PlannedRequest("configuration", "http", "h", "/c.cfg"), after_s=-0.5)


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
    assert Faithful400HD.DEVIATIONS is DEVIATIONS  # the class declares the catalogue
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


# -- a user's firmware class, named in the rig --------------------------------------------------

class TinyFirmware:
    """A user's firmware model: its own deviation, and timing the faithful class lacks."""

    DEVIATIONS: Mapping[str, Deviation] = {
        "slow-retry": Deviation("slow-retry", "the configuration is asked for twice, 30 s "
                                "apart", "one request per cycle")}

    def __init__(self, deviations: tuple[str, ...] | list[str] | frozenset[str] = ()) -> None:
        self.deviations = frozenset(deviations)

    def plan(self, options: Mapping[int, bytes], model: str, mac: str,
             settings: Mapping[str, str]) -> ProvisioningPlan:
        cfg = PlannedRequest("configuration", "http", "192.0.2.1", f"/{mac}.cfg")
        events: tuple[PlannedRequest | Wait | Retry, ...] = (
            Wait(1.5, "power-up settle"), cfg)
        if "slow-retry" in self.deviations:
            events += (Retry(cfg, after_s=30, why="retry timer"),)
        return ProvisioningPlan(Source.STATIC_URL, events)


TINY = f"{__name__}:TinyFirmware"


def _rig(tmp_path: Path, change: Callable[[dict[str, Any]], object]) -> Path:
    document = rig_document(phones(2))
    change(document)
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_rig_deviations_are_those_of_the_class_the_rig_names(tmp_path: Path) -> None:
    def tiny(d: dict[str, Any]) -> None:
        d["sim"]["firmware"] = TINY
        d["sim"]["phones"]["ph1"]["deviations"] = ["slow-retry"]
    bench = load_bench(_rig(tmp_path, tiny))
    assert bench.phones[0].firmware_class is TinyFirmware
    assert bench.phones[0].deviations == {"slow-retry"}

    def faithful_name(d: dict[str, Any]) -> None:
        tiny(d)
        d["sim"]["phones"]["ph2"]["deviations"] = ["mac-case-flipped"]
    with pytest.raises(SimConfigError) as caught:
        load_bench(_rig(tmp_path, faithful_name))
    assert str(caught.value).splitlines() == [
        f"{tmp_path / 'rig.yaml'}: sim.phones.ph2.deviations: unknown deviation(s) "
        f"mac-case-flipped; known: slow-retry (phone ph2, firmware class {TINY})"]


def test_release_deviations_are_checked_against_the_class(tmp_path: Path) -> None:
    def release(d: dict[str, Any]) -> None:
        d["sim"]["phones"]["ph1"]["release_deviations"] = {"2.2.9.1": ["slow-retry"]}
    with pytest.raises(SimConfigError) as caught:
        load_bench(_rig(tmp_path, release))
    message = str(caught.value)
    assert "sim.phones.ph1.release_deviations['2.2.9.1']: unknown deviation(s) slow-retry; " \
           "known: mac-case-flipped" in message
    assert "(phone ph1, firmware class framework.sim.firmware:Faithful400HD)" in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(("scale", "says"), [
    (0, "sim.time_scale: Input should be greater than 0"),
    (-1, "sim.time_scale: Input should be greater than 0"),
    ("fast", "sim.time_scale: Input should be a valid number")])
def test_time_scale_must_be_positive(tmp_path: Path, scale: object, says: str) -> None:
    with pytest.raises(SimConfigError, match=says):
        load_bench(_rig(tmp_path, lambda d: d["sim"].update(time_scale=scale)))


def test_time_scale_multiplies_boot_and_late_request(tmp_path: Path) -> None:
    def scaled(d: dict[str, Any]) -> None:
        d["sim"].update(time_scale=0.01, boot_time_s=60)
        d["sim"]["phones"]["ph2"].update(boot_time_s=90, late_request_s=100)
    ph1, ph2 = load_bench(_rig(tmp_path, scaled)).phones
    assert (ph1.boot_time_s, ph1.late_request_s, ph1.time_scale) == \
        pytest.approx((0.6, 0.02, 0.01))
    assert (ph2.boot_time_s, ph2.late_request_s) == pytest.approx((0.9, 1.0))
    default = load_bench(_rig(tmp_path, lambda d: None)).phones[0]
    assert default.time_scale == 1.0 and default.boot_time_s == pytest.approx(0.05)


def test_dhcp_client_leaves_out_option77_only_when_told() -> None:
    import threading

    from framework.sim.dhcp import DhcpClient

    def codes(user_class: bool) -> list[object]:
        client = DhcpClient("eth0", MAC, "440HD", 160, threading.Event(), lambda _: None,
                            user_class=user_class)
        return [o[0] for o in client._options(1, []) if isinstance(o, tuple)]

    assert 77 in codes(True) and 60 in codes(True)
    assert 77 not in codes(False) and 60 in codes(False)
