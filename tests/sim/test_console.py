"""The phone's serial login and shell as a terminal user sees them (framework/sim/console.py):
echo, CR/LF, backspace, no echo of the password, the contract's commands."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from framework.sim.console import PhoneShell, SerialLine, SerialSession


@dataclass
class FakePhone:
    model: str = "440HD"
    mac: str = "00908F000001"
    version: str = "2.2.8.61"
    settings: dict[str, str] = field(default_factory=lambda: {"provisioning/method": "dynamic"})
    actions: list[str] = field(default_factory=list)

    def get_setting(self, key: str) -> str | None:
        return self.settings.get(key)

    def set_setting(self, key: str, value: str) -> None:
        self.settings[key] = value

    def reboot(self) -> None:
        self.actions.append("reboot")

    def factory_reset(self) -> None:
        self.actions.append("factory_reset")

    def provision(self) -> None:
        self.actions.append("provision")


Wire = tuple[SerialLine, bytearray, FakePhone, SerialSession]


@pytest.fixture
def wire() -> Wire:
    line = SerialLine("ph1")
    seen = bytearray()
    line.attach(seen.extend)
    phone = FakePhone()
    session = SerialSession(line, phone, "admin", lambda: "s3cret")
    line.connect_phone(session.feed)
    return line, seen, phone, session


def test_input_before_the_login_prompt_is_ignored(wire: Wire) -> None:
    line, seen, _, session = wire
    line.receive(b"admin\r")
    assert seen == b""
    session.login_prompt()
    assert seen == b"\r\n440HD login: "


def test_login_echoes_the_user_but_never_the_password(wire: Wire) -> None:
    line, seen, _, session = wire
    session.login_prompt()
    seen.clear()
    line.receive(b"admin\r\n")
    line.receive(b"s3cret\r")
    assert seen == b"admin\r\nPassword: \r\n[admin@440HD ~]$ "
    assert b"s3cret" not in seen


def test_wrong_password_and_backspace(wire: Wire) -> None:
    line, seen, _, session = wire
    session.login_prompt()
    line.receive(b"admim\x7fn\rwrong\r")
    assert b"Login incorrect\r\n440HD login: " in seen
    assert b"admim\x08 \x08n" in seen  # the terminal sees the correction


def test_commands_and_their_side_effects(wire: Wire) -> None:
    line, seen, phone, session = wire
    session.login_prompt()
    line.receive(b"admin\rs3cret\r")
    seen.clear()
    line.receive(b"cat /etc/release\r")
    assert seen == (b"cat /etc/release\r\nHW_TYPE=440HD\r\nBUILD_PROFILE=release\r\n"
                    b"SWVERSION=2.2.8.61\r\n[admin@440HD ~]$ ")
    seen.clear()
    line.receive(b"cat /sys/class/net/eth0/address\r")
    assert seen == b"cat /sys/class/net/eth0/address\r\n00:90:8f:00:00:01\r\n[admin@440HD ~]$ "
    line.receive(b"provision\r")
    assert phone.actions == ["provision"] and seen.endswith(b"Provisioning started\r\n"
                                                            b"[admin@440HD ~]$ ")
    seen.clear()
    line.receive(b"reboot\r")
    assert phone.actions[-1] == "reboot" and seen == b"reboot\r\nRestarting system.\r\n"


@pytest.mark.parametrize(("command", "output", "status"), [
    ("getcfg provisioning/method", "dynamic\n", 0),
    ("getcfg nope", "getcfg: nope: no such setting\n", 1),
    ("setcfg a/b 'two words'", "", 0),
    ("setcfg a/b", "usage: setcfg KEY VALUE\n", 2),
    ("cat /etc/passwd", "cat: /etc/passwd: No such file or directory\n", 1),
    ("echo 'unterminated", "-sh: syntax error: No closing quotation\n", 2),
    ("rm -rf /", "-sh: rm: not found\n", 127),
])
def test_shell_commands(command: str, output: str, status: int) -> None:
    phone = FakePhone()
    result = PhoneShell(phone, "admin").run(command)
    assert (result.output, result.status) == (output, status)
    if command.startswith("setcfg a/b '"):
        assert phone.settings["a/b"] == "two words"
