"""Phone400HD against a scripted 400HD on a serial line behind ser2net, with its web
interface and SIP agent at its address.

Boot is proven by evidence (the DISCOVER event and the login prompt); failures mark the
phone broken once, and later calls fail at once with the first reason.
"""

from __future__ import annotations

import base64
import threading
import time

import pytest

from framework.netns import TestNetwork
from framework.phone import (
    BootEvidence,
    IdentityMismatch,
    PhoneBroken,
    PhoneRelease,
    TriggerEvidence,
    dialect_for,
)
from tests.phone.conftest import PASSWORD, PASSWORD_VAR, PhoneMaker, phone_services, phone_spec
from tests.phone.web_peer import WebPhone

pytestmark = pytest.mark.netns


def test_power_cycle_boot_evidence_and_identity(scripted: PhoneMaker) -> None:
    peer, phone = scripted()
    boot = phone.power_cycle_and_wait_boot()
    assert isinstance(boot, BootEvidence) and boot.how == "power-cycle"
    assert boot.discover_at is not None
    assert boot.started <= boot.discover_at <= boot.ready_at
    assert peer.outlet.switched == ["off", "on"] and peer.boots == 1
    assert phone.verify_identity() == PhoneRelease(
        "440HD", "00908F000001", "2.2.8.61",
        {"HW_TYPE": "440HD", "BUILD_PROFILE": "release", "SWVERSION": "2.2.8.61"})
    log = phone.console_log
    assert log is not None
    text = log.read_text()
    assert "serial < udhcpc: sending discover" in text and PASSWORD not in text


def test_login_on_a_phone_that_is_off_powers_it_on(scripted: PhoneMaker) -> None:
    peer, phone = scripted()
    assert not peer.powered
    assert phone.release().model == "440HD"
    assert peer.outlet.switched == ["on"] and peer.boots == 1
    assert "outlet is off: switching it on" in phone.console_log.read_text()  # type: ignore[union-attr]


def test_phone_already_at_the_shell_is_used_as_it_is(scripted: PhoneMaker) -> None:
    peer, phone = scripted()
    peer.power_on()
    phone.login()
    phone.close()
    _, again = scripted(peer=peer)  # a second driver finds the shell prompt: no new login, no power
    assert again.release().model == "440HD"
    assert peer.outlet.switched == [] and peer.typed.count("admin") == 1


def test_wrong_identity_breaks_the_phone_and_stays_broken(scripted: PhoneMaker) -> None:
    # another phone behind this outlet: its DISCOVER carries its own MAC, so boot
    # evidence here is the login prompt alone
    peer, phone = scripted(dhcp=False, mac="00908F0000FF", version="2.2.8.70")
    phone.power_cycle_and_wait_boot()
    with pytest.raises(PhoneBroken) as first:
        phone.verify_identity()
    assert isinstance(first.value.cause, IdentityMismatch)
    assert str(first.value) == (
        "phone ph1 is broken: checking identity: /etc/release reports MAC 00908F0000FF "
        "(rig says 00908F000001); firmware 2.2.8.70 (rig says 2.2.8.61)")
    commands = list(peer.commands)
    started = time.monotonic()
    with pytest.raises(PhoneBroken) as later:
        phone.power_cycle_and_wait_boot()
    assert time.monotonic() - started < 0.1
    assert later.value.reason == first.value.reason
    assert isinstance(later.value.cause, IdentityMismatch)
    assert "(not retried)" in str(later.value)
    assert peer.commands == commands and peer.outlet.switched == ["off", "on"]


def test_no_discover_means_broken(scripted: PhoneMaker) -> None:
    _, phone = scripted(send_discover=False, boot_timeout_s=0.5)
    started = time.monotonic()
    with pytest.raises(PhoneBroken) as err:
        phone.power_cycle_and_wait_boot()
    assert time.monotonic() - started < 1.5
    assert str(err.value).startswith(
        "phone ph1 is broken: power-cycle: no DHCP DISCOVER from 00:90:8f:00:00:01 within "
        "0.5 s after power-cycle (is it powered and linked?): no DHCP DISCOVER from "
        "00908F000001 within 0.5 s")
    with pytest.raises(PhoneBroken, match="not retried"):
        phone.release()


def test_boot_that_never_reaches_login_shows_the_console(scripted: PhoneMaker) -> None:
    _, phone = scripted(boot_hangs=True, boot_timeout_s=0.5)
    with pytest.raises(PhoneBroken) as err:
        phone.power_cycle_and_wait_boot()
    message = str(err.value)
    assert "power-cycle: no login prompt within 0.5 s after power-cycle (its DISCOVER was " \
           "seen)" in message
    assert "  | Kernel panic - not syncing: VFS: Unable to mount root fs" in message
    assert f"console log: {phone.console_log}" in message


def test_a_prompt_from_before_the_power_cut_is_not_boot_evidence(scripted: PhoneMaker) -> None:
    """The login prompt must follow a boot banner seen after the power came back: here the
    terminal server delivers an old prompt 0.1 s into the 0.3 s power-off, and the new boot
    never gets to its prompt."""
    _, phone = scripted(late_prompt=True, boot_hangs=True, boot_timeout_s=0.5)
    with pytest.raises(PhoneBroken, match=r"power-cycle: no login prompt within 0\.5 s "
                                          r"after power-cycle \(its DISCOVER was seen\)"):
        phone.power_cycle_and_wait_boot(off_time=0.3)


def test_wrong_password_breaks_without_showing_it(scripted: PhoneMaker,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    peer, phone = scripted()
    monkeypatch.setenv(PASSWORD_VAR, "not-the-password")
    peer.power_on()
    with pytest.raises(PhoneBroken) as err:
        phone.login()
    assert str(err.value) == ("phone ph1 is broken: login: login as 'admin' refused (Login "
                              "incorrect): check the rig credentials ({env: "
                              "HILT_R_PHONE_PASSWORD})")
    assert "not-the-password" not in phone.console_log.read_text()  # type: ignore[union-attr]
    assert peer.typed[-1] == "not-the-password"


def test_shell_reboot(scripted: PhoneMaker) -> None:
    peer, phone = scripted()
    boot = phone.reboot()
    assert boot.how == "reboot" and boot.discover_at is not None and peer.boots == 2
    assert peer.commands.count("reboot") == 1
    assert phone.release().model == "440HD"  # logged in again after the restart
    assert peer.outlet.switched == ["on"]  # no power cycle was needed


@pytest.mark.parametrize("seen_before", [True, False], ids=["banner-read", "banner-in-probe"])
def test_a_health_probe_that_meets_a_restart_awaits_the_boot(scripted: PhoneMaker,
                                                            seen_before: bool) -> None:
    """A phone that restarts on its own (after a configuration file) may meet the health
    probe anywhere in its boot: its console answers with the boot, and the login prompt is
    awaited as a boot is (boot_timeout_s), not for the probe's few seconds. Whether the
    restart banner was read before the probe or arrives during it."""
    peer, phone = scripted(boot_timeout_s=5.0)
    peer.power_on()
    phone.login()
    peer.boot_time = 2.0  # the restart's login prompt: longer than command_timeout_s
    if seen_before:
        read = threading.Event()
        unwatch = phone.watch_restart(read.set)  # the driver's console read the banner
        assert unwatch is not None
        peer.restart()
        assert read.wait(5.0), "no restart banner on the console"
        unwatch()  # the prompt is 2 s (> command_timeout_s) away
    else:
        peer.hang()  # the probe's empty line gets no prompt: the restart comes first
        threading.Timer(0.2, peer.restart).start()
    assert phone.responsive(0.4) is None
    assert peer.boots == 2 and peer.typed.count("admin") == 2  # logged in again
    assert phone.release().model == "440HD"
    # a console that shows nothing still fails the probe within its own timeout
    peer.power_off()
    started = time.monotonic()
    problem = phone.responsive(0.4)
    assert problem is not None and "timed out" in problem
    assert time.monotonic() - started < 2.0


def test_web_reboot_and_factory_defaults(scripted: PhoneMaker, phone_net: TestNetwork
                                         ) -> None:
    peer, phone = scripted()
    phone.login()
    with phone_services(phone_net, peer, sip_port=None) as (web, _):
        boot = phone.web_reboot()
        assert boot.how == "web reboot" and boot.discover_at is not None
        assert boot.started <= boot.discover_at <= boot.ready_at and peer.boots == 2
        boot = phone.web_reset_to_defaults()
        assert boot.how == "web factory defaults" and peer.resets == 1 and peer.boots == 3
    paths = [(path, form) for _, path, form, _ in web.requests]
    assert paths == [("/login.cgi", {"user": ["admin"], "psw": [_b64(PASSWORD)]}),
                     ("/mainform.cgi/reboot.htm", {}),
                     ("/login.cgi", {"user": ["admin"], "psw": [_b64(PASSWORD)]}),
                     ("/mainform.cgi/reset.htm", {"CONFIG": ["2"]})]
    assert peer.outlet.switched == ["on"] and "reboot" not in peer.commands
    text = phone.console_log.read_text()  # type: ignore[union-attr]
    assert "serial < Restarting system." in text and PASSWORD not in text
    assert "web reboot: http://192.0.2.11:80 answered 200" in text


def test_a_refused_web_login_breaks_without_showing_the_password(
        scripted: PhoneMaker, phone_net: TestNetwork) -> None:
    peer, phone = scripted()
    with phone_services(phone_net, peer, web=WebPhone(password="other"), sip_port=None):
        with pytest.raises(PhoneBroken) as err:
            phone.web_reboot()
    assert str(err.value) == (
        "phone ph1 is broken: web reboot: web login refused by http://192.0.2.11:80: no "
        "session cookie as 'admin' (it says Login failed): check the rig's web credentials")
    assert peer.boots == 0 and peer.outlet.switched == []
    log = phone.console_log
    assert log is None or PASSWORD not in log.read_text()


def test_check_sync_is_answered_then_the_discover_comes(scripted: PhoneMaker,
                                                       phone_net: TestNetwork) -> None:
    peer, phone = scripted()
    phone.login()
    with phone_services(phone_net, peer) as (_, sip):
        evidence = phone.check_sync()
    assert isinstance(evidence, TriggerEvidence) and evidence.how == "check-sync"
    assert evidence.status == "SIP/2.0 200 OK" and evidence.transmissions == 1
    assert evidence.discover_at is not None
    assert evidence.sent_at <= evidence.answered_at and evidence.sent_at <= evidence.discover_at
    assert sip is not None and sip.requests == ["NOTIFY sip:00908F000001@192.0.2.11:5060 "
                                                "SIP/2.0"]
    assert peer.check_syncs == 1 and peer.boots == 1  # no reboot


def test_check_sync_to_a_phone_that_does_not_answer_breaks_it(
        scripted: PhoneMaker, phone_net: TestNetwork) -> None:
    peer, phone = scripted(phone_spec(sip={"port": 5099}))
    phone.sip_t1_s = 0.01
    with phone_services(phone_net, peer):  # its agent listens on 5060, not 5099
        with pytest.raises(PhoneBroken) as err:
            phone.check_sync()
    assert str(err.value) == ("phone ph1 is broken: check-sync: no answer to SIP NOTIFY "
                              "check-sync at 192.0.2.11:5099 after 11 transmissions "
                              "(Timer F, 0.64 s)")
    assert peer.check_syncs == 0


def test_console_excerpt_is_the_log_since_a_time(scripted: PhoneMaker) -> None:
    _, phone = scripted()
    phone.login()
    since = time.time()
    assert phone.run("echo marker") == "marker"
    excerpt = phone.console_excerpt(since)
    assert "serial > echo marker" in excerpt
    assert "login: " not in excerpt


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_without_dhcp_events_the_login_prompt_is_the_evidence(scripted: PhoneMaker) -> None:
    _, phone = scripted(dhcp=False)
    boot = phone.power_cycle_and_wait_boot()
    assert boot.discover_at is None and boot.ready_at >= boot.started


def test_unknown_firmware_family_is_refused() -> None:
    with pytest.raises(LookupError, match=r"no shell dialect for firmware 9\.1\.0 \(known "
                                          r"families: 2\.x, 3\.x\)"):
        dialect_for("9.1.0")
    assert phone_spec(firmware="3.4.3.123").firmware_family == "3.4"
