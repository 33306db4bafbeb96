"""The phone's serial login and shell as a terminal user sees them (framework/sim/console.py):
echo, CR/LF, backspace, no echo of the password, the contract's BusyBox-like commands and
no vendor commands."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from framework.sim.console import PhoneShell, SerialLine, SerialSession


@dataclass
class FakePhone:
    model: str = "440HD"
    mac: str = "00908F000001"
    version: str = "2.2.8.61"
    actions: list[str] = field(default_factory=list)

    def reboot(self) -> None:
        self.actions.append("reboot")


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
    seen.clear()
    line.receive(b"id\r")
    assert seen == b"id\r\nuid=0(admin) gid=0(root) groups=0(root)\r\n[admin@440HD ~]$ "
    assert phone.actions == []
    seen.clear()
    line.receive(b"reboot\r")
    assert phone.actions[-1] == "reboot" and seen == b"reboot\r\nRestarting system.\r\n"


@pytest.mark.parametrize(("command", "output", "status"), [
    ("uname -a", "Linux 440HD 2.6.32 #1 PREEMPT armv5tejl GNU/Linux\n", 0),
    ("echo 'two  words' x", "two  words x\n", 0),
    ("ip link show eth0", "2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo_fast "
     "qlen 1000\n    link/ether 00:90:8f:00:00:01 brd ff:ff:ff:ff:ff:ff\n", 0),
    # No vendor commands: settings change through configuration files, web and SIP.
    ("provisioning_trigger", "-sh: provisioning_trigger: not found\n", 127),
    ("setcfg a/b c", "-sh: setcfg: not found\n", 127),
    ("cat /etc/passwd", "cat: /etc/passwd: No such file or directory\n", 1),
    ("echo 'unterminated", "-sh: syntax error: No closing quotation\n", 2),
    ("rm -rf /", "-sh: rm: not found\n", 127),
])
def test_shell_commands(command: str, output: str, status: int) -> None:
    phone = FakePhone()
    result = PhoneShell(phone, "admin").run(command)
    assert (result.output, result.status) == (output, status)
    assert phone.actions == []
