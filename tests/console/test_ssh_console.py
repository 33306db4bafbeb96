"""SSH consoles against OpenSSH sshd in a namespace: password login, commands, host-key
policies (reject / accept / warn-and-record), errors, and the shared per-phone log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from framework.console import (
    ConsoleClosed,
    ConsoleError,
    PhoneLog,
    SerialConsole,
    SshConsole,
    console_for,
)
from framework.netns import TestNetwork
from framework.rig.model import PhoneSpec
from tests.console.conftest import PASSWORD, SerialBench
from tests.console.ssh_peer import SshPeer, make_host_key, sshd

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("in_lab")]

PROMPT = re.compile(r"\[admin@440HD ~\]\$ $")


def ssh(log: PhoneLog, port: int = 22, password: str = PASSWORD, **kw: object) -> SshConsole:
    return SshConsole("ph1 ssh", log, "192.0.2.11", port, "admin", password, prompt=PROMPT,
                      **kw)  # type: ignore[arg-type]


def test_password_login_and_commands(ssh_peer: SshPeer, log_dir: Path) -> None:
    log = PhoneLog.for_path(log_dir / "ph1.console.log")
    with ssh(log) as con:
        con.read_until_prompt(timeout=5)
        assert con.run("cat /etc/release").splitlines() == [
            "HW_TYPE=440HD", "BUILD_PROFILE=release", "SWVERSION=2.2.8.61"]
        assert con.run("echo hello from the phone") == "hello from the phone"
    text = log.path.read_text()
    assert PASSWORD not in text
    assert "ssh    # opened ssh://admin@192.0.2.11:22" in text
    assert "is unknown; accepted and recorded (policy warn-and-record)" in text
    assert ssh_peer.fingerprint() in text


def test_wrong_password_is_a_clear_error(ssh_peer: SshPeer, log_dir: Path) -> None:
    log = PhoneLog.for_path(log_dir / "ph1.console.log")
    with pytest.raises(ConsoleError) as err:
        ssh(log, password="not-it-0000").open()
    assert str(err.value) == ("ph1 ssh: SSH authentication as 'admin' failed at "
                              "192.0.2.11:22 (check the rig credentials)")
    assert "not-it-0000" not in log.path.read_text()


def test_exit_ends_the_stream(ssh_peer: SshPeer, log_dir: Path) -> None:
    with ssh(PhoneLog.for_path(log_dir / "x.log")) as con:
        con.read_until_prompt(timeout=5)
        con.sendline("exit")
        with pytest.raises(ConsoleClosed, match=r"ph1 ssh: stream ended: remote closed the "
                                                r"shell.* while waiting for 'never'"):
            con.expect("never", timeout=5)


def test_reject_policy_without_known_key(ssh_peer: SshPeer, log_dir: Path) -> None:
    with pytest.raises(ConsoleError) as err:
        ssh(PhoneLog.for_path(log_dir / "r.log"), host_key_policy="reject").open()
    assert str(err.value) == (f"ph1 ssh: host key ssh-ed25519 {ssh_peer.fingerprint()} for "
                              f"192.0.2.11 is not in any known_hosts file and the policy is "
                              f"reject")


def test_warn_and_record_then_reject_with_the_recorded_file(
        ssh_peer: SshPeer, log_dir: Path, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    with ssh(PhoneLog.for_path(log_dir / "w.log"), known_hosts=known) as con:
        con.read_until_prompt(timeout=5)
    assert known.read_text().startswith("192.0.2.11 ssh-ed25519 ")
    # the recorded key now satisfies the strict policy
    with ssh(PhoneLog.for_path(log_dir / "w.log"), known_hosts=known,
             host_key_policy="reject") as con:
        con.read_until_prompt(timeout=5)
        assert con.run("cat /etc/release").startswith("HW_TYPE=")


def test_changed_host_key_is_rejected_against_known_hosts(
        console_net: TestNetwork, log_dir: Path, tmp_path: Path) -> None:
    known = tmp_path / "known_hosts"
    key = make_host_key(tmp_path / "key1")
    with sshd(console_net.client(1), "192.0.2.11", 2222, "admin", PASSWORD,
              tmp_path / "sshd1", host_key=key):
        with ssh(PhoneLog.for_path(log_dir / "c.log"), port=2222, known_hosts=known) as con:
            con.read_until_prompt(timeout=5)
    make_host_key(key)  # the phone comes back with another key
    with sshd(console_net.client(1), "192.0.2.11", 2222, "admin", PASSWORD,
              tmp_path / "sshd2", host_key=key) as peer:
        with pytest.raises(ConsoleError) as err:
            ssh(PhoneLog.for_path(log_dir / "c.log"), port=2222, known_hosts=known).open()
    assert str(err.value).startswith(
        f"ph1 ssh: host key for 192.0.2.11 changed: got ssh-ed25519 {peer.fingerprint()}, "
        f"{known} has ssh-ed25519 SHA256:")
    assert "does not match" in (log_dir / "c.log").read_text()


def test_accept_policy_notes_the_key(ssh_peer: SshPeer, log_dir: Path) -> None:
    log = PhoneLog.for_path(log_dir / "a.log")
    with ssh(log, host_key_policy="accept") as con:
        con.read_until_prompt(timeout=5)
    assert f"host key ssh-ed25519 {ssh_peer.fingerprint()} for 192.0.2.11 accepted " \
           f"(policy accept)" in log.path.read_text()


def test_serial_and_ssh_share_one_log_per_phone(
        ssh_peer: SshPeer, serial_bench: SerialBench, log_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HILT_R_PHONE_PASSWORD", PASSWORD)
    phone = PhoneSpec.model_validate({
        "name": "ph1", "model": "440HD", "mac": "00:90:8f:00:00:01", "address": "192.0.2.11",
        "firmware": "2.2.8.61", "power": {"pdu": "pdu1", "outlet": 1},
        "console": {"serial": {"url": serial_bench.raw_url}, "ssh": {"port": 22}},
        "credentials": {"username": "admin", "password": {"env": "HILT_R_PHONE_PASSWORD"}}})
    serial_con = console_for(phone, "serial", log_dir, prompt=PROMPT)
    ssh_con = console_for(phone, "ssh", log_dir, prompt=PROMPT)
    assert isinstance(serial_con, SerialConsole) and isinstance(ssh_con, SshConsole)
    assert serial_con.log_path == ssh_con.log_path == log_dir / "ph1.console.log"
    serial_bench.raw.power_off()
    serial_bench.raw.power_on()
    with serial_con, ssh_con:
        serial_con.expect(r"login: $", timeout=5)
        ssh_con.read_until_prompt(timeout=5)
        ssh_con.run("cat /etc/release")
    channels = {line.split()[1] for line in ssh_con.log_path.read_text().splitlines()}
    assert channels == {"serial", "ssh"}
    with pytest.raises(ConsoleError, match="unknown console kind 'rlogin' "
                                           r"\(known: serial, ssh, telnet\)"):
        console_for(phone, "rlogin", log_dir)
    with pytest.raises(ConsoleError, match="ph1: the rig gives no telnet console"):
        console_for(phone, "telnet", log_dir)
