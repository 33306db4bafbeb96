"""Phone400HD against a scripted phone speaking the real UC 3.4 dialect: the ``#`` prompt
``[admin@C450HD /home/ipphone]# ``, version ``UC_3.4.6.604.1``, an ``/etc/release`` with
``HW_TYPE``/``BUILD_PROFILE``/``SWVERSION`` and no ``MAC=`` line (the MAC comes from the
interface), over serial (ser2net), SSH (OpenSSH sshd) and telnet (a telnetlib3 server);
and the dialect fields a rig file sets (``shell:``, per phone or per firmware family)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from framework.console import console_for
from framework.netns import TestNetwork
from framework.phone import Phone400HD, PhoneBroken, PhoneRelease, dialect_for
from framework.rig.model import Rig
from tests.console.ssh_peer import sshd
from tests.console.telnet_peer import TelnetPeer, telnet_server
from tests.phone.conftest import PASSWORD, PASSWORD_VAR, PhoneMaker, phone_spec
from tests.phone.scripted_phone import DhcpEvents, ScriptedPhone

pytestmark = pytest.mark.netns

UC = "UC_3.4.6.604.1"
MAC = "00908F000001"
RELEASE = {"HW_TYPE": "C450HD", "BUILD_PROFILE": "release", "SWVERSION": UC}


def uc_spec(**over: Any) -> Any:
    return phone_spec(model="C450HD", firmware=UC, **over)


def test_uc_phone_over_serial_boots_logs_in_and_shows_its_identity(scripted: PhoneMaker
                                                                   ) -> None:
    peer, phone = scripted(uc_spec(), model="C450HD", version=UC)
    assert phone.dialect.family == "3.x"
    boot = phone.power_cycle_and_wait_boot()
    assert boot.discover_at is not None
    assert phone.verify_identity() == PhoneRelease("C450HD", MAC, UC, RELEASE)
    assert peer.commands[:2] == ["cat /etc/release", "cat /sys/class/net/eth0/address"]
    log = phone.console_log
    assert log is not None and "[admin@C450HD /home/ipphone]# " in log.read_text()


def test_without_sysfs_the_mac_comes_from_ip_link(scripted: PhoneMaker) -> None:
    peer, phone = scripted(uc_spec(), model="C450HD", version=UC, sysfs=False)
    assert phone.verify_identity().mac == MAC
    assert peer.commands[-1] == "ip link show eth0"


def test_another_mac_on_the_interface_breaks_the_phone(scripted: PhoneMaker) -> None:
    _, phone = scripted(uc_spec(), dhcp=False, model="C450HD", version=UC,
                        mac="00908F0000AA")
    with pytest.raises(PhoneBroken, match=r"MAC 00908F0000AA \(rig says 00908F000001\)"):
        phone.verify_identity()


def test_rig_file_dialect_fields_per_family_and_per_phone(scripted: PhoneMaker) -> None:
    spec = uc_spec(shell={"mac_commands": ["ip link show eth0"]}).model_dump(mode="json")
    rig = Rig.model_validate({
        "name": "real", "lab": {"interface": "eth0", "address": "192.0.2.1/24",
                                "pool": {"start": "192.0.2.100", "end": "192.0.2.199"}},
        "phones": [spec],
        "shell": {"3.4": {"prompt": r"\[{user}@C450HD /home/ipphone\]# ",
                          "mac_commands": ["cat /sys/class/net/eth0/address"],
                          "release_fields": {"model": "HW_TYPE", "version": "SWVERSION"}}}})
    got = rig.phone("ph1")
    peer, phone = scripted(got, model="C450HD", version=UC)
    assert phone.dialect.shell_prompt == r"\[{user}@C450HD /home/ipphone\]# "
    assert phone.dialect.mac_commands == ("ip link show eth0",)  # the phone's own wins
    assert phone.verify_identity().model == "C450HD"
    assert "cat /sys/class/net/eth0/address" not in peer.commands


def test_a_release_without_the_rig_files_keys_is_a_clear_error(scripted: PhoneMaker) -> None:
    spec = uc_spec(shell={"release_fields": {"model": "PRODUCT", "version": "SWVERSION"}})
    _, phone = scripted(spec, model="C450HD", version=UC)
    with pytest.raises(PhoneBroken, match="/etc/release lacks PRODUCT"):
        phone.release()


def test_the_default_prompt_matches_both_shells() -> None:
    for version in ("2.2.8.61", UC):
        prompt = dialect_for(version).prompt_for("admin")
        assert prompt.search("[admin@C450HD /home/ipphone]# ")
        assert prompt.search("[admin@440HD ~]$ ")
        assert not prompt.search("[root@440HD ~]$ ")


@pytest.fixture
def uc_sshd(phone_net: TestNetwork, tmp_path: Path) -> Iterator[None]:
    with sshd(phone_net.client(0), "192.0.2.251", 22, "admin", PASSWORD, tmp_path / "sshd",
              model="C450HD", version=UC):
        yield


def test_uc_phone_over_ssh(uc_sshd: None, phone_net: TestNetwork, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)
    spec = uc_spec(address="192.0.2.251",
                   console={"ssh": {"port": 22, "host_key_policy": "accept"}})
    phone = Phone400HD(spec, _NoPower(), lambda kind: console_for(spec, kind, tmp_path / "c"),
                       None, command_timeout_s=5.0)
    try:
        with phone_net.lab.entered():
            assert phone.kind == "ssh"
            assert phone.verify_identity() == PhoneRelease("C450HD", MAC, UC, RELEASE)
    finally:
        phone.close()


def test_uc_phone_over_telnet_logs_in_and_reboots(phone_net: TestNetwork, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A phone with ``management/telnet/enabled=1`` and no serial line: login at its
    telnet prompts, identity, and a shell reboot that ends the session; the boot evidence is
    the DISCOVER and the telnet server answering again with a login prompt."""
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)
    dhcp = DhcpEvents()

    def session(fd: int) -> ScriptedPhone:
        return ScriptedPhone(fd, model="C450HD", version=UC, password=PASSWORD, dhcp=dhcp)

    spec = uc_spec(console={"telnet": {}}, shell={"provisioning_done": "Provisioning done"})
    phone = Phone400HD(spec, _NoPower(), lambda kind: console_for(spec, kind, tmp_path / "c"),
                       dhcp, boot_timeout_s=5.0, command_timeout_s=5.0)
    try:
        with telnet_server(phone_net.client(0), "192.0.2.11", 23, session) as peer:
            with phone_net.lab.entered():
                assert phone.kind == "telnet"
                assert phone.dialect.provisioning_done == "Provisioning done"
                assert phone.verify_identity() == PhoneRelease("C450HD", MAC, UC, RELEASE)
                boot = phone.reboot()
                assert boot.how == "reboot" and boot.discover_at is not None
                assert phone.release().version == UC
            first, *later = _sessions(peer)
            assert first.commands[-1] == "reboot" and first.ended.is_set()
            assert later and later[-1].commands[0] == "cat /etc/release"  # logged in again
    finally:
        phone.close()
    text = (tmp_path / "c" / "ph1.console.log").read_text()
    assert "telnet < Restarting system." in text and PASSWORD not in text
    assert "telnet < [admin@C450HD /home/ipphone]# " in text


def _sessions(peer: TelnetPeer) -> list[ScriptedPhone]:
    return [p for p in peer.phones if p.typed]  # the sessions someone logged in to


class _NoPower:
    """A PDU outlet that must not be touched (the SSH or telnet phone is already up)."""

    def on(self) -> None:
        raise AssertionError("switched on")

    def off(self) -> None:
        raise AssertionError("switched off")

    def cycle(self, off_time: float = 3.0) -> None:
        raise AssertionError("power-cycled")

    def state(self) -> bool:
        return True
