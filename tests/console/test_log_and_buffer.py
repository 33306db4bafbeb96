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
