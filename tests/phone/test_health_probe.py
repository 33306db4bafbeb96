"""The health probe on an SSH console when the phone restarts on its own.

A restart ends the SSH session without a word and the phone refuses a new one until it
has booted again. The probe must tell that from a dead console by the wire: a DHCP
DISCOVER from the phone since it last answered, then its SSH server within the boot
timeout. No DISCOVER: the console does not answer. (The serial side, a restart banner
met by the probe, is tested against the scripted phone in test_driver_scripted.py; the
whole loop, an SSH-only phone restarting after its configuration, in
tests/e2e/test_timing.py.)

Fakes stand in for the console and the DHCP server here so the order of events is exact:
a restart cannot be timed against a real probe without a sleep.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest

from framework.console import ConsoleError
from framework.phone.shell import PhoneShell
from tests.phone.conftest import PASSWORD, PASSWORD_VAR, phone_spec


class Session:
    """An SSH session to the phone: answers its prompt while the phone is up."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone
        self.prompt: Any = None
        self.open_ = False

    @property
    def is_open(self) -> bool:
        return self.open_ and self.phone.generation == self.generation

    @property
    def log_path(self) -> Path:
        return Path("/dev/null")

    def open(self) -> None:
        self.phone.connects += 1
        if not self.phone.up():
            raise ConsoleError("ph1 ssh: cannot connect to 192.0.2.11:22: connection refused")
        self.generation = self.phone.generation
        self.open_ = True

    def close(self) -> None:
        self.open_ = False

    def read_until_prompt(self, timeout: float) -> str:
        if not self.is_open:
            raise ConsoleError("ph1 ssh: stream ended while waiting for the prompt")
        return ""

    def run(self, command: str, timeout: float) -> str:
        return self.read_until_prompt(timeout)


class Phone:
    """The phone behind the fakes: a restart bumps its generation (ending every session)
    and keeps its SSH server down for ``refusals`` connection attempts."""

    def __init__(self) -> None:
        self.generation = 0
        self.connects = 0
        self.refusals = 0
        self.discover_at: float | None = None

    def restart(self, refusals: int, discover: bool) -> None:
        self.generation += 1
        self.refusals = refusals
        self.discover_at = time.time() if discover else None

    def up(self) -> bool:
        if self.refusals:
            self.refusals -= 1
            return False
        return True


class Dhcp:
    """The DHCP server's view: the restart's DISCOVER, or none (``wait_for`` times out)."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone
        self.asked: list[float] = []

    def wait_for(self, mac: str, msg_type: str = "DISCOVER", *, since: float,
                 timeout: float) -> Any:
        self.asked.append(since)
        at = self.phone.discover_at
        if at is None or at < since:
            raise TimeoutError(f"no {msg_type} from {mac} within {timeout:g} s")
        return type("Seen", (), {"time": at})()


class Outlet:
    def state(self) -> bool:
        return True


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> tuple[Phone, Dhcp, PhoneShell]:
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)
    phone = Phone()
    dhcp = Dhcp(phone)
    spec = phone_spec(console={"ssh": {"port": 22}})
    shell = PhoneShell(spec, Outlet(), lambda kind: Session(phone),  # type: ignore[arg-type]
                       dhcp, boot_timeout_s=2.0, command_timeout_s=0.5)
    shell.prompt = re.compile(r"\$ $")
    assert shell.kind == "ssh"
    shell.login()
    return phone, dhcp, shell


def test_a_restart_that_ended_the_session_is_awaited(rig: tuple[Phone, Dhcp, PhoneShell]
                                                     ) -> None:
    phone, dhcp, shell = rig
    answered = time.time()
    phone.restart(refusals=3, discover=True)
    assert shell.responsive(0.5) is None
    assert dhcp.asked and dhcp.asked[0] <= answered  # a DISCOVER since it last answered
    assert phone.connects == 1 + 3 + 1  # login; refused: the probe's, 2 awaiting; the new one


def test_without_a_discover_the_console_does_not_answer(rig: tuple[Phone, Dhcp, PhoneShell]
                                                        ) -> None:
    phone, _, shell = rig
    phone.restart(refusals=100, discover=False)
    problem = shell.responsive(0.5)
    assert problem is not None
    assert "connection refused" in problem
    assert "its SSH session ended and no DHCP DISCOVER followed within 2 s" in problem


def test_a_server_that_never_comes_back_is_named(rig: tuple[Phone, Dhcp, PhoneShell]
                                                 ) -> None:
    phone, _, shell = rig
    phone.restart(refusals=10_000, discover=True)
    started = time.monotonic()
    problem = shell.responsive(0.5)
    assert problem is not None and problem.startswith(
        "SSH did not answer within 2 s after its session failed and the phone sent a DHCP "
        "DISCOVER")
    assert time.monotonic() - started < 4.0


def test_an_answering_session_asks_dhcp_nothing(rig: tuple[Phone, Dhcp, PhoneShell]) -> None:
    _, dhcp, shell = rig
    assert shell.responsive(0.5) is None
    assert dhcp.asked == []
