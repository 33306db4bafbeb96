"""Serial consoles through ser2net (raw TCP and RFC 2217) and a local tty, against a
scripted 400HD on a pty: login, commands, the one log per phone, timeouts, masking."""

from __future__ import annotations

import re
import termios
import time
from datetime import datetime
from pathlib import Path

import pytest

from framework.console import (
    ConsoleClosed,
    ConsoleError,
    ConsoleTimeout,
    PhoneLog,
    SerialConsole,
)
from tests.console.conftest import PASSWORD, SerialBench
from tests.console.serial_peer import open_pty
from tests.phone.scripted_phone import ScriptedPhone

pytestmark = [pytest.mark.netns, pytest.mark.usefixtures("in_lab")]

PROMPT = re.compile(r"\[admin@\w+ ~\]\$ $")


def fresh_boot(phone: ScriptedPhone) -> None:
    phone.power_off()
    phone.power_on()


@pytest.fixture(autouse=True)
def quiet_lines(serial_bench: SerialBench) -> None:
    """Phones off and nothing left in the lines from an earlier test: a terminal server
    hands a new client whatever the phone printed while nobody listened."""
    for phone in (serial_bench.raw, serial_bench.telnet):
        phone.power_off()
    for pty in serial_bench.ptys:
        termios.tcflush(pty.slave, termios.TCIOFLUSH)


def login(con: SerialConsole, model: str) -> None:
    con.expect(rf"{model} login: $", timeout=5)
    con.sendline("admin")
    con.expect(r"Password: $", timeout=5)
    con.sendline(PASSWORD)
    con.prompt = PROMPT
    con.read_until_prompt(timeout=5)


@pytest.mark.parametrize("which", ["raw", "telnet"])
def test_login_and_release_through_ser2net(serial_bench: SerialBench, log_dir: Path,
                                           which: str) -> None:
    phone: ScriptedPhone = getattr(serial_bench, which)
    url = serial_bench.raw_url if which == "raw" else serial_bench.telnet_url
    log = PhoneLog.for_path(log_dir / f"{which}.console.log")
    with SerialConsole(f"{which} serial", log, url) as con:
        fresh_boot(phone)
        login(con, phone.model)
        release = con.run("cat /etc/release")
        assert release.splitlines() == [f"HW_TYPE={phone.model}", "BUILD_PROFILE=release",
                                        "SWVERSION=2.2.8.61"]
        assert con.run("echo ready") == "ready"
    assert phone.typed[-4:-2] == ["admin", PASSWORD]  # the phone got the real password
    text = log.path.read_text()
    assert PASSWORD not in text
    assert "serial > ******** (masked: sent after a password prompt)" in text
    assert f"serial < {phone.model} login: " in text
    assert "serial < SWVERSION=2.2.8.61" in text
    assert "serial > cat /etc/release" in text


def test_log_lines_are_timestamped_in_order(serial_bench: SerialBench, log_dir: Path) -> None:
    log = PhoneLog.for_path(log_dir / "ts.console.log")
    with SerialConsole("ts serial", log, serial_bench.raw_url) as con:
        fresh_boot(serial_bench.raw)
        login(con, "440HD")
    stamps = [datetime.fromisoformat(line.split(" ", 1)[0])
              for line in log.path.read_text().splitlines()]
    assert len(stamps) > 8
    assert stamps == sorted(stamps)
    assert all(s.tzinfo is not None for s in stamps)


def test_timeout_names_the_pattern_the_last_lines_and_the_log(serial_bench: SerialBench,
                                                               log_dir: Path) -> None:
    log = PhoneLog.for_path(log_dir / "to.console.log")
    with SerialConsole("ph9 serial", log, serial_bench.raw_url) as con:
        fresh_boot(serial_bench.raw)
        con.expect(r"login: $", timeout=5)
        started = time.monotonic()
        with pytest.raises(ConsoleTimeout) as err:
            con.expect([r"Welcome to 440HD", r"Kernel panic"], timeout=0.3)
        assert 0.3 <= time.monotonic() - started < 1.0
    message = str(err.value)
    assert message.startswith("ph9 serial: timed out after 0.3 s waiting for "
                              "'Welcome to 440HD' or 'Kernel panic'\nlast lines received:\n")
    assert "  | 440HD login: " in message
    assert "  | udhcpc: sending discover" in message
    assert message.endswith(f"console log: {log.path}")
    assert "# timed out after 0.3 s waiting for" in log.path.read_text()


def test_expect_list_returns_the_earliest_match(serial_bench: SerialBench,
                                                log_dir: Path) -> None:
    log = PhoneLog.for_path(log_dir / "list.console.log")
    with SerialConsole("list serial", log, serial_bench.raw_url) as con:
        fresh_boot(serial_bench.raw)
        found = con.expect([r"login: $", r"Starting kernel", r"U-Boot \S+ "], timeout=5)
        assert (found.index, found.text) == (2, "U-Boot 2016.01 ")
        found = con.expect([r"login: $", r"Starting kernel"], timeout=5)
        assert found.index == 1
        assert con.expect([r"login: $"], timeout=5).before.endswith("discover\n\n440HD ")


def test_explicit_secret_is_masked_both_ways(serial_bench: SerialBench,
                                             log_dir: Path) -> None:
    log = PhoneLog.for_path(log_dir / "sec.console.log")
    with SerialConsole("sec serial", log, serial_bench.raw_url) as con:
        fresh_boot(serial_bench.raw)
        login(con, "440HD")
        con.log.add_secret("Sip-Secret-77")
        con.sendline("echo Sip-Secret-77", secret=True)
        # the shell echoed the line, secret included, and printed it; the caller gets the
        # real value, only the log is masked
        assert con.read_until_prompt(timeout=5).splitlines()[-1] == "Sip-Secret-77"
    text = log.path.read_text()
    assert "Sip-Secret-77" not in text
    assert "serial > ******** (masked: secret)" in text
    received = [line for line in text.splitlines() if " serial < " in line]
    # the echo of the line and what echo printed
    assert sum(line.count("********") for line in received) == 2


def test_kicked_off_the_terminal_server_is_reported(serial_bench: SerialBench,
                                                    log_dir: Path) -> None:
    """ser2net kicks the old user when a second client connects (kickolduser)."""
    first = SerialConsole("first serial", PhoneLog.for_path(log_dir / "k1.log"),
                          serial_bench.raw_url)
    second = SerialConsole("second serial", PhoneLog.for_path(log_dir / "k2.log"),
                           serial_bench.raw_url)
    with first:
        first.sendline("")
        with second, pytest.raises(ConsoleClosed, match=r"first serial: stream ended"):
            first.expect(r"never printed", timeout=5)


def test_nothing_listening_is_a_clear_error(log_dir: Path) -> None:
    con = SerialConsole("ph5 serial", PhoneLog.for_path(log_dir / "n.log"),
                        "socket://192.0.2.251:7055")
    with pytest.raises(ConsoleError, match=r"ph5 serial: cannot open serial console "
                                           r"socket://192.0.2.251:7055: .*refused"):
        con.open()


def test_local_tty(log_dir: Path) -> None:
    pty = open_pty()
    phone = ScriptedPhone(pty.master, model="450HD", password=PASSWORD, echo=False)
    try:
        log = PhoneLog.for_path(log_dir / "tty.console.log")
        with SerialConsole("tty serial", log, pty.device, baudrate=9600) as con:
            phone.power_on()
            login(con, "450HD")
            assert con.run("cat /etc/release").splitlines()[0] == "HW_TYPE=450HD"
            assert con.run("bogus") == "-sh: bogus: not found"
        assert f"serial # opened {pty.device} at 9600 baud" in log.path.read_text()
    finally:
        phone.close()
        pty.close()
