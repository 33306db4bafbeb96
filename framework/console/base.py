"""The expect-style ``Console`` protocol and ``StreamConsole``, its implementation over a byte
stream (serial or SSH channel are small subclasses).

A reader thread moves every received byte into the phone log and the console's expect
buffer; ``expect()`` waits on that buffer's condition (an event, not a sleep) until a
pattern matches, the stream ends, or the timeout passes. A timeout error shows what was
awaited, the last lines received and the log path.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self, runtime_checkable

from framework.console.log import ExpectBuffer, PhoneLog
from framework.errors import HilError

log = logging.getLogger(__name__)

Pattern = str | re.Pattern[str]
#: A shell prompt such as ``[admin@440HD ~]$ `` or ``# `` at the end of the output.
DEFAULT_PROMPT = re.compile(r"[$#] $")
#: After this, the next line sent is a password and is masked in the log.
PASSWORD_PROMPT = re.compile(r"(?i)(password|passphrase|passcode)[^\n]*:\s*$")


class ConsoleError(HilError, RuntimeError):
    """A console could not be opened or used; the message says which console and why."""


class ConsoleTimeout(ConsoleError):
    """``expect`` timed out: shows what was awaited, the last lines received and the log."""

    def __init__(self, console: str, awaited: str, timeout: float, tail: list[str],
                 log_path: Path) -> None:
        self.console, self.awaited, self.timeout = console, awaited, timeout
        self.tail, self.log_path = tail, log_path
        shown = "\n".join(f"  | {line}" for line in tail) or "  (nothing received)"
        super().__init__(f"{console}: timed out after {timeout:g} s waiting for {awaited}\n"
                         f"last lines received:\n{shown}\nconsole log: {log_path}")


class ConsoleClosed(ConsoleError):
    """The stream ended (remote closed, cable pulled) while a pattern was awaited."""


@dataclass(frozen=True)
class ConsoleMatch:
    """What ``expect`` found: which pattern (index into the list), the match, the text before."""

    index: int
    pattern: str
    match: re.Match[str]
    before: str

    @property
    def text(self) -> str:
        return self.match.group(0)


@runtime_checkable
class Console(Protocol):
    """An expect-style console to a phone's Linux shell (serial or SSH).

    Usage::

        with open_console(phone, "serial", log_dir) as con:
            con.expect(r"login: $", timeout=60)
            con.sendline("admin")
            con.expect(r"Password: $", timeout=5)
            con.sendline(password)              # masked in the log: sent after a prompt
            con.prompt = re.compile(r"\\[admin@440HD [^]]*\\]\\$ $")
            con.read_until_prompt(timeout=5)
            release = con.run("cat /etc/release")
    """

    name: str
    prompt: re.Pattern[str]

    @property
    def log_path(self) -> Path: ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def send(self, data: str, *, secret: bool = False) -> None: ...

    def sendline(self, line: str = "", *, secret: bool = False) -> None: ...

    def expect(self, pattern: Pattern | Sequence[Pattern], timeout: float) -> ConsoleMatch: ...

    def discard(self) -> str: ...

    def read_until_prompt(self, timeout: float) -> str: ...

    def run(self, command: str, timeout: float = 10.0) -> str: ...


def _compile(pattern: Pattern) -> re.Pattern[str]:
    return pattern if isinstance(pattern, re.Pattern) else re.compile(pattern)


class StreamConsole:
    """``Console`` over a byte stream: subclasses provide open/read/write/close of the stream.

    ``_read_stream`` returns b"" when nothing arrived within its short timeout and raises
    ``EOFError`` (or OSError) when the stream has ended.
    """

    channel = "stream"

    def __init__(self, name: str, log: PhoneLog, *, prompt: Pattern = DEFAULT_PROMPT,
                 encoding: str = "utf-8") -> None:
        self.name = name  # e.g. "ph1 serial": used in every error
        self.log = log
        self.prompt = _compile(prompt)
        self.encoding = encoding
        self.buffer = ExpectBuffer()
        self._reader: threading.Thread | None = None
        self._stop = threading.Event()
        self._decoder_tail = b""
        self._line_tail = ""
        self._watchers: list[tuple[re.Pattern[str], Callable[[], None]]] = []
        self._watch_lock = threading.Lock()

    # --- what subclasses provide -------------------------------------------------------
    def _open_stream(self) -> None:
        raise NotImplementedError

    def _read_stream(self) -> bytes:
        raise NotImplementedError

    def _write_stream(self, data: bytes) -> None:
        raise NotImplementedError

    def _close_stream(self) -> None:
        raise NotImplementedError

    def _describe(self) -> str:
        return self.channel

    # --- lifecycle -----------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.log.path

    @property
    def is_open(self) -> bool:
        return self._reader is not None and self._reader.is_alive()

    def open(self) -> None:
        """Open the stream (in the calling thread's namespace) and start reading it."""
        if self.is_open:
            return
        self.buffer = ExpectBuffer()
        self._stop.clear()
        self.log.acquire()
        try:
            self._open_stream()
        except BaseException:
            self.log.release()
            raise
        self.log.note(self.channel, f"opened {self._describe()}")
        self._reader = threading.Thread(target=self._read_loop, name=f"{self.name} reader",
                                        daemon=True)
        self._reader.start()

    def close(self) -> None:
        if self._reader is None:
            return
        self._stop.set()
        try:
            self._close_stream()
        finally:
            self._reader.join(5)
            self._reader = None
            self.log.note(self.channel, "closed")
            self.log.release()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_loop(self) -> None:
        reason = "closed"
        try:
            while not self._stop.is_set():
                data = self._read_stream()
                if data:
                    self._received(data)
        except (EOFError, OSError) as exc:
            reason = f"stream ended: {exc}" if str(exc) else "stream ended by the other side"
        except Exception as exc:  # a driver bug must still end the stream visibly
            reason = f"reader failed: {type(exc).__name__}: {exc}"
            log.exception("%s reader failed", self.name)
        if not self._stop.is_set():
            self.log.note(self.channel, reason)
        self.buffer.close(reason)

    def _received(self, data: bytes) -> None:
        data = self._decoder_tail + data
        # keep an incomplete UTF-8 sequence for the next chunk
        cut = len(data)
        for back in range(1, min(4, len(data)) + 1):
            byte = data[-back]
            if byte & 0xC0 == 0x80:
                continue
            if byte >= 0xC0 and back < (2 if byte < 0xE0 else 3 if byte < 0xF0 else 4):
                cut = len(data) - back
            break
        data, self._decoder_tail = data[:cut], data[cut:]
        text = data.decode(self.encoding, errors="backslashreplace")
        self.log.received(self.channel, text)
        self.buffer.feed(text)
        lines = (self._line_tail + text).split("\n")
        self._line_tail = lines.pop()[-1000:]
        with self._watch_lock:
            watchers = list(self._watchers)
        for pattern, callback in watchers:
            if any(pattern.search(line) for line in lines):
                callback()

    def watch(self, pattern: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (in the reader thread) for each complete line received from
        now on that matches ``pattern``; returns the function that stops watching."""
        entry = (re.compile(pattern), callback)
        with self._watch_lock:
            self._watchers.append(entry)

        def unwatch() -> None:
            with self._watch_lock:
                if entry in self._watchers:
                    self._watchers.remove(entry)
        return unwatch

    # --- sending -------------------------------------------------------------------------
    def _after_password_prompt(self) -> bool:
        with self.buffer.changed:
            return bool(PASSWORD_PROMPT.search(self.buffer.text[-200:]))

    def send(self, data: str, *, secret: bool = False) -> None:
        """Send ``data`` as is. ``secret`` (or a pending password prompt) masks it in the log."""
        if not self.is_open:
            raise ConsoleError(f"{self.name}: console is not open")
        reason = "secret" if secret else ("sent after a password prompt"
                                          if self._after_password_prompt() else None)
        if reason:
            self.log.add_secret(data.strip("\r\n"))
        self.log.sent(self.channel, data, masked=reason)
        try:
            self._write_stream(data.encode(self.encoding))
        except (OSError, EOFError) as exc:
            raise ConsoleError(f"{self.name}: cannot send: {exc}") from None

    def sendline(self, line: str = "", *, secret: bool = False) -> None:
        self.send(line + "\n", secret=secret)

    # --- expecting -----------------------------------------------------------------------
    def expect(self, pattern: Pattern | Sequence[Pattern], timeout: float) -> ConsoleMatch:
        """Wait until one of the patterns matches text received after the cursor.

        Returns the first match by position (ties: the earlier pattern); the cursor moves
        past it. ``ConsoleTimeout`` / ``ConsoleClosed`` name what was awaited.
        """
        patterns = [_compile(p) for p in ([pattern] if isinstance(pattern, str | re.Pattern)
                                          else pattern)]
        if not patterns:
            raise ValueError("expect needs at least one pattern")
        deadline = time.monotonic() + timeout
        buf = self.buffer
        with buf.changed:
            while True:
                found = self._search(patterns)
                if found is not None:
                    return found
                if buf.closed is not None:
                    raise ConsoleClosed(self._failure(patterns, timeout, buf.closed))
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.log.note(self.channel, f"timed out after {timeout:g} s waiting for "
                                  f"{self._awaited(patterns)}")
                    raise ConsoleTimeout(self.name, self._awaited(patterns), timeout,
                                         self._tail(), self.log_path)
                buf.changed.wait(remaining)

    def _search(self, patterns: list[re.Pattern[str]]) -> ConsoleMatch | None:
        buf = self.buffer
        best: tuple[int, int, re.Match[str]] | None = None
        for index, pat in enumerate(patterns):
            m = pat.search(buf.text, buf.cursor)
            if m and (best is None or m.start() < best[2].start()):
                best = (index, m.start(), m)
        if best is None:
            return None
        index, _, m = best
        before = buf.text[buf.cursor:m.start()]
        buf.cursor = m.end()
        return ConsoleMatch(index, patterns[index].pattern, m, before)

    def _awaited(self, patterns: list[re.Pattern[str]]) -> str:
        return " or ".join(repr(p.pattern) for p in patterns)

    def _tail(self) -> list[str]:
        return [self.log.mask(line) for line in self.buffer.tail()]

    def _failure(self, patterns: list[re.Pattern[str]], timeout: float, why: str) -> str:
        shown = "\n".join(f"  | {line}" for line in self._tail()) or "  (nothing received)"
        return (f"{self.name}: {why} while waiting for {self._awaited(patterns)}\n"
                f"last lines received:\n{shown}\nconsole log: {self.log_path}")

    def discard(self) -> str:
        """Skip everything received so far (so a stale prompt cannot match); return it."""
        with self.buffer.changed:
            skipped = self.buffer.text[self.buffer.cursor:]
            self.buffer.cursor = len(self.buffer.text)
            return skipped

    def read_until_prompt(self, timeout: float) -> str:
        """The text received up to the next shell prompt (``self.prompt``)."""
        return self.expect(self.prompt, timeout).before

    def run(self, command: str, timeout: float = 10.0) -> str:
        """Run a shell command at the prompt; return its output (no echo, no prompt).

        The caller must be at a shell prompt (after login). The echo of the command, if
        the shell echoes, is removed.
        """
        self.discard()
        self.sendline(command)
        out = self.read_until_prompt(timeout)
        lines = out.split("\n")
        echo = next((i for i, line in enumerate(lines) if line.strip() == command.strip()),
                    None)
        if echo is not None:
            # What came before the echo was printed before the shell read the command: the
            # phone's asynchronous messages (boot, provisioning), not this command's output.
            if echo and any(line.strip() for line in lines[:echo]):
                self.log.note(self.channel, f"asynchronous output before the echo of "
                                            f"{command!r} set aside ({echo} line(s))")
            lines = lines[echo + 1:]
        return "\n".join(lines).rstrip("\n")
