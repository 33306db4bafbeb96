"""The phone log and the expect buffer without a network: pyserial's ``loop://`` echoes
everything sent, which makes it a peer that answers exactly what a test writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from framework.console import ConsoleTimeout, PhoneLog, SerialConsole
from framework.console.log import ExpectBuffer


def loop_console(tmp_path: Path, name: str = "loop") -> SerialConsole:
    return SerialConsole(name, PhoneLog.for_path(tmp_path / f"{name}.log"), "loop://")


def test_secret_split_across_chunks_is_still_masked(tmp_path: Path) -> None:
    con = loop_console(tmp_path)
    con.log.add_secret("Hidden-Value-9")
    with con:
        con._received(b"token: Hidden-")   # what the reader hands over, in two pieces
        con._received(b"Value-9 ok\n")
        assert con.expect(r"ok\n", timeout=1).before == "token: Hidden-Value-9 "
    text = con.log_path.read_text()
    assert "serial < token: ******** ok" in text
    assert "Hidden" not in text, text


def test_utf8_split_across_chunks_is_decoded(tmp_path: Path) -> None:
    con = loop_console(tmp_path)
    with con:
        data = "Überprüfung läuft\n".encode()
        con._received(data[:1])
        con._received(data[1:9])
        con._received(data[9:])
        assert con.expect(r"läuft", timeout=1).before == "Überprüfung "


def test_prompt_waiting_for_input_is_in_the_log_before_the_answer(tmp_path: Path) -> None:
    con = loop_console(tmp_path)
    with con:
        con.send("440HD login: ")          # loop:// echoes it: the "phone" prints a prompt
        con.expect(r"login: $", timeout=1)
        con.sendline("admin")
        con.expect(r"admin\n", timeout=1)
    lines = [line.split(" ", 1)[1] for line in con.log_path.read_text().splitlines()]
    assert lines[1:5] == ["serial > 440HD login: ", "serial < 440HD login: ",
                          "serial > admin", "serial < admin"]


def test_timeout_with_nothing_received(tmp_path: Path) -> None:
    with loop_console(tmp_path, "quiet") as con, pytest.raises(ConsoleTimeout) as err:
        con.expect([r"login: $", re.compile("Password")], timeout=0.1)
    assert str(err.value) == (f"quiet: timed out after 0.1 s waiting for 'login: $' or "
                              f"'Password'\nlast lines received:\n  (nothing received)\n"
                              f"console log: {tmp_path / 'quiet.log'}")


def test_buffer_drops_old_text_but_keeps_matching() -> None:
    buf = ExpectBuffer()
    buf.KEEP = 100
    buf.feed("x" * 150)
    buf.cursor = 150
    buf.feed("tail text")
    assert len(buf.text) < 60 and buf.text[buf.cursor:] == "tail text"


class _NoisySerial(SerialConsole):
    """A serial line where the phone prints asynchronous messages around a command's echo,
    as a 400HD does while it provisions (the text arrives exactly as given)."""

    def __init__(self, tmp_path: Path, answer: str) -> None:
        super().__init__("noisy", PhoneLog.for_path(tmp_path / "noisy.log"), "loop://",
                         prompt=re.compile(r"\[admin@\S+ ~\]\$ $"))
        self.answer = answer

    def sendline(self, line: str = "", *, secret: bool = False) -> None:
        self._received(self.answer.format(line=line).encode())


def test_asynchronous_output_before_the_echo_is_not_the_commands_output(tmp_path: Path
                                                                        ) -> None:
    con = _NoisySerial(tmp_path, "ning done\n{line}\nvalue 7\n[admin@440HD ~]$ ")
    with con:
        assert con.run("cat /sys/class/net/eth0/mtu", timeout=1) == "value 7"
    assert "asynchronous output before the echo of 'cat /sys/class/net/eth0/mtu'" in \
        con.log_path.read_text()


def test_output_after_the_echo_is_kept_and_an_echoless_shell_keeps_everything(tmp_path: Path
                                                                               ) -> None:
    con = _NoisySerial(tmp_path, "{line}\nProvisioning done\n[admin@440HD ~]$ ")
    with con:
        assert con.run("sync", timeout=1) == "Provisioning done"
    echoless = _NoisySerial(tmp_path, "SWVERSION=3.4\n[admin@440HD ~]$ ")
    with echoless:
        assert echoless.run("cat /etc/release", timeout=1) == "SWVERSION=3.4"


def test_a_watched_line_calls_back_once_complete_until_unwatched(tmp_path: Path) -> None:
    con = loop_console(tmp_path, "watched")
    calls: list[str] = []
    with con:
        stop = con.watch(r"^Provisioning done$", lambda: calls.append("done"))
        con._received(b"Provisio")              # half a line: not yet
        assert calls == []
        con._received(b"ning done\nProvisioning done later\n")
        assert calls == ["done"]                 # one chunk with one matching line
        stop()
        con._received(b"Provisioning done\n")
        assert calls == ["done"]
