"""Every row of Table 10-2 and every example of Table 10-1, through the core."""

from __future__ import annotations

import pytest

from framework.resolution import PhoneIdentity, get_profile, resolve
from tests.resolution.vectors import ALL, Vector


@pytest.mark.parametrize("vec", ALL, ids=[v.id for v in ALL])
def test_vector(vec: Vector) -> None:
    profile = get_profile(vec.profile).with_switches(**vec.switches)
    result = resolve(vec.options, PhoneIdentity(vec.model, vec.mac), profile)
    assert (result.firmware_url, result.config_url) == (vec.firmware_url, vec.config_url), vec.source
    assert result.source == vec.winner
    assert result.rule == vec.rule
    assert result.promise.value == vec.promise
    # The explanation cites the manual section behind the winning rule.
    if vec.winner == "66/67":
        assert "Table 10-2" in result.explanation
    if vec.winner == "160":
        assert "Table 10-1" in result.explanation


def test_requests_are_ordered_firmware_then_configuration() -> None:
    result = resolve({66: b"Audiocodes.com"}, PhoneIdentity("420HD", "00908f000001"))
    assert [r.purpose for r in result.requests] == ["firmware", "configuration"]
    assert result.requests[0].url == "tftp://audiocodes.com/420HD.img"
    assert result.requests[1].url == "tftp://audiocodes.com/00908F000001.cfg"


@pytest.mark.parametrize("model", ["405HD", "420HD", "430HD", "440HD", "445HD", "450HD"])
def test_default_firmware_name_is_the_hardware_type(model: str) -> None:
    result = resolve({66: b"192.168.0.11"}, PhoneIdentity(model, "001122334455"))
    assert result.firmware_url == f"tftp://192.168.0.11/{model}.img"


def test_subdirectory_keeps_config_next_to_firmware_by_default() -> None:
    phone = PhoneIdentity("420HD", "001122334455")
    result = resolve({160: b"http://host/420HD/420HD.img;420HD.cfg"}, phone)
    assert result.firmware_url == "http://host/420HD/420HD.img"
    assert result.config_url == "http://host/420HD/420HD.cfg"
    assert result.promise.value == "unspecified"  # [F] field configs, not the manual
    root = resolve({160: b"http://host/420HD/420HD.img;420HD.cfg"}, phone,
                   get_profile("2.2").with_switches(config_location="server-root"))
    assert root.config_url == "http://host/420HD.cfg"


def test_trailing_slash_directory_gets_default_names() -> None:
    result = resolve({160: b"http://host/phones/"}, PhoneIdentity("440HD", "001122334455"))
    assert result.firmware_url == "http://host/phones/440HD.img"
    assert result.config_url == "http://host/phones/001122334455.cfg"
    assert result.rule == "T10-1/directory"
