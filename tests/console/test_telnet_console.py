"""Telnet consoles (telnetlib3 client) against a telnetlib3 server whose sessions are
scripted phones at their login prompt: login, commands, the password masked, a refused
login, the session ending, nothing listening, and ``console_for`` from the rig."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from framework.console import (
    ConsoleClosed,
    ConsoleError,
    PhoneLog,
    TelnetConsole,
    console_for,
)
from framework.rig.model import PhoneSpec
from tests.console.conftest import PASSWORD
from tests.console.telnet_peer import TelnetPeer

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("in_lab")]

PROMPT = re.compile(r"\[admin@440HD ~\]\$ $")


def telnet(log: PhoneLog, port: int = 23) -> TelnetConsole:
    return TelnetConsole("ph1 telnet", log, "192.0.2.11", port, prompt=PROMPT,
                         connect_timeout=3)


def login(con: TelnetConsole, password: str = PASSWORD) -> None:
    con.expect(r"440HD login: $", timeout=5)
    con.sendline("admin")
    con.expect(r"Password: $", timeout=5)
    con.sendline(password)


def test_login_commands_and_the_password_masked(telnet_peer: TelnetPeer,
                                                log_dir: Path) -> None:
    log = PhoneLog.for_path(log_dir / "ph1.console.log")
    with telnet(log) as con:
        login(con)
        con.read_until_prompt(timeout=5)
        assert con.run("cat /etc/release").splitlines() == [
            "HW_TYPE=440HD", "BUILD_PROFILE=release", "SWVERSION=2.2.8.61"]
        assert con.run("cat /sys/class/net/eth0/address") == "00:90:8f:00:00:01"
    phone = telnet_peer.phones[-1]
    assert phone.typed[:2] == ["admin", PASSWORD]  # CR LF arrived as one line end each
    text = log.path.read_text()
    assert PASSWORD not in text
    assert "telnet # opened telnet://192.0.2.11:23" in text
    assert "telnet > ******** (masked: sent after a password prompt)" in text
    assert "telnet < SWVERSION=2.2.8.61" in text


def test_a_refused_login_shows_the_login_prompt_again(telnet_peer: TelnetPeer,
                                                      log_dir: Path) -> None:
    with telnet(PhoneLog.for_path(log_dir / "x.log")) as con:
        login(con, password="not-it-0000")
        found = con.expect([PROMPT, r"Login incorrect"], timeout=5)
        assert found.index == 1
        con.expect(r"440HD login: $", timeout=5)
    assert "not-it-0000" not in (log_dir / "x.log").read_text()


def test_exit_and_reboot_end_the_session(telnet_peer: TelnetPeer, log_dir: Path) -> None:
    for command, last_words in (("exit", "exit"), ("reboot", "Restarting system.")):
        with telnet(PhoneLog.for_path(log_dir / "e.log")) as con:
            login(con)
            con.read_until_prompt(timeout=5)
            con.sendline(command)
            con.expect(re.escape(last_words), timeout=5)
            with pytest.raises(ConsoleClosed, match=r"ph1 telnet: stream ended: remote "
                                                    r"closed the connection while waiting"):
                con.expect("never", timeout=5)
            with pytest.raises(ConsoleError, match="ph1 telnet: console is not open"):
                con.sendline("")


def test_nothing_listening_is_one_line(log_dir: Path) -> None:
    with pytest.raises(ConsoleError) as err:
        telnet(PhoneLog.for_path(log_dir / "n.log"), port=2323).open()
    assert re.fullmatch(r"ph1 telnet: cannot open telnet console 192\.0\.2\.11:2323: "
                        r".*(refused|Connect call failed).*", str(err.value)), str(err.value)


def test_console_for_telnet_from_the_rig(telnet_peer: TelnetPeer, log_dir: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HILT_R_PHONE_PASSWORD", PASSWORD)
    phone = PhoneSpec.model_validate({
        "name": "ph1", "model": "440HD", "mac": "00:90:8f:00:00:01", "address": "192.0.2.11",
        "firmware": "2.2.8.61", "power": {"pdu": "pdu1", "outlet": 1},
        "console": {"telnet": {}},
        "credentials": {"username": "admin", "password": {"env": "HILT_R_PHONE_PASSWORD"}}})
    con = console_for(phone, "telnet", log_dir, prompt=PROMPT)
    assert isinstance(con, TelnetConsole) and (con.host, con.port) == ("192.0.2.11", 23)
    with con:
        login(con)
        con.read_until_prompt(timeout=5)
        assert con.run("echo ok") == "ok"
    assert PASSWORD not in con.log_path.read_text()
