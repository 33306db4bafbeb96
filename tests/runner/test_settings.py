"""Settings through the phone's own configuration file (framework.runner.settings)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from framework.resolution import PhoneIdentity, PhoneSettings, get_profile, resolve
from framework.rig import load_rig
from framework.runner.options import ROOT
from framework.runner.settings import (
    SettingsApplied,
    settings_file,
    settings_options,
    settings_url,
    url_option_proof,
)

SPEC = load_rig(ROOT / "rigs" / "sim.yaml").phones[0]


def test_the_file_names_the_model_first_then_one_setting_a_line() -> None:
    body = settings_file("440HD", {"provisioning/url_option_value": "224",
                                   "provisioning/random_provisioning_time": "0"})
    assert body == (b"system/type=440HD\nprovisioning/url_option_value=224\n"
                    b"provisioning/random_provisioning_time=0\n")


@pytest.mark.parametrize("key,value", [("a=b", "1"), ("k", "1\nsystem/type=405HD"), ("", "1")])
def test_a_setting_that_would_break_the_file_is_refused(key: str, value: str) -> None:
    with pytest.raises(ValueError, match="no '=' in a key, no line breaks"):
        settings_file("440HD", {key: value})


@pytest.mark.parametrize("url_option", [160, 224])
def test_the_phone_finds_its_settings_file_whichever_url_option_it_reads(
        url_option: int) -> None:
    # The resolution core (the manual's reading) says where the phone looks for its
    # configuration with these options: exactly the settings file, for 160 and for 224.
    expected = resolve(settings_options("192.0.2.1", SPEC), PhoneIdentity(SPEC.model, SPEC.mac),
                       get_profile("2.2"), PhoneSettings(url_option=url_option))
    configs = [r.url for r in expected.requests if r.purpose == "configuration"]
    assert configs == [settings_url("192.0.2.1", SPEC)]
    assert SPEC.mac in configs[0]  # one file per phone: lanes never share it


@dataclass
class _Msg:
    time: float
    message_type: str
    parameter_list: tuple[int, ...]


def test_the_url_option_is_proven_by_the_dhcp_parameter_request_list() -> None:
    transcript = [_Msg(1.0, "DISCOVER", (1, 3, 66, 67, 160)), _Msg(5.0, "DISCOVER", (1, 3, 224)),
                  _Msg(5.1, "OFFER", ()), _Msg(5.2, "REQUEST", (1, 3, 66, 67, 224))]
    assert url_option_proof(transcript, 224, since=4.0, until=6.0) == ([1, 3, 66, 67, 224], None)
    prl, why = url_option_proof(transcript, 224, since=0.0, until=2.0)
    assert prl == [1, 3, 66, 67, 160]
    assert why == ("its DHCP parameter request list (option 55) asks for 1, 3, 66, 67, 160 "
                   "but not 224: it did not take provisioning/url_option_value=224")
    assert url_option_proof(transcript, 224, since=7.0, until=8.0) == (None, None)


def test_an_unfetched_settings_file_is_said_with_what_the_phone_asked_for() -> None:
    fetched = SettingsApplied({"k": "v"}, "http://l/f.cfg", "check-sync", 1.0, 2.0, 1)
    assert fetched.unproven is None
    missed = SettingsApplied({"k": "v"}, "http://l/f.cfg", "check-sync", 1.0, None, 1,
                             ("http /settings.cfg (not-found)",))
    assert missed.unproven == ("it did not fetch its settings file http://l/f.cfg after "
                               "check-sync; it asked for: http /settings.cfg (not-found)")
