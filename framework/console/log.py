"""One timestamped log per phone: every byte in and out of its consoles, secrets masked.

The file is the evidence attached to reports (STYLE.md, after pytest-embedded: "one
timestamped log per device is also the expect buffer"). Each console of a phone (serial,
SSH) writes into the same file, tagged with its channel; what a console receives is also
kept in its ``ExpectBuffer`` for ``expect()``. Lines look like::

    2025-01-31T10:02:03.123456+01:00 serial < 440HD login:
    2025-01-31T10:02:03.130001+01:00 serial > admin
    2025-01-31T10:02:03.140002+01:00 serial > ******** (masked: sent after a password prompt)
    2025-01-31T10:02:03.150003+01:00 ssh    # host key ssh-ed25519 SHA256:... recorded
"""

from __future__ import annotations

import re
import threading
from datetime import datetime
from pathlib import Path
from typing import ClassVar, TextIO

MASK = "********"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def printable(text: str) -> str:
    """Escape control characters (except tab) so the log stays one record per line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class PhoneLog:
    """The console log file of one phone; shared by its consoles, safe across threads."""

    _open: ClassVar[dict[Path, PhoneLog]] = {}
    _open_guard = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._partial: dict[str, tuple[str, str]] = {}  # channel -> (timestamp, text)
        self._users = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = None

    @classmethod
    def for_path(cls, path: Path) -> PhoneLog:
        """The log for ``path``, shared by every console writing there (one file per phone)."""
        key = path.resolve()
        with cls._open_guard:
            log = cls._open.get(key)
            if log is None:
                log = cls._open[key] = cls(path)
            return log

    def acquire(self) -> None:
        """A console starts writing here (the file stays open while any console is open)."""
        with self._lock:
            self._users += 1

    def release(self) -> None:
        """A console stopped writing; the file is closed when none is left."""
        with self._lock:
            self._users = max(0, self._users - 1)
            if self._users == 0:
                self._flush_partial()
                if self._file is not None:
                    self._file.close()
                    self._file = None

    def _out(self) -> TextIO:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
        return self._file

    def add_secret(self, value: str) -> None:
        """Never write ``value``: it is replaced by ``********`` wherever it would appear."""
        if value:
            with self._lock:
                self._secrets.add(value)

    def mask(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text

    @staticmethod
    def _now() -> str:
        return datetime.now().astimezone().isoformat(timespec="microseconds")

    def _write(self, stamp: str, channel: str, mark: str, text: str) -> None:
        self._out().write(f"{stamp} {channel:<6} {mark} {printable(self.mask(text))}\n")

    def _flush_partial(self, channel: str | None = None) -> None:
        for chan in [channel] if channel else list(self._partial):
            if chan in self._partial:
                stamp, text = self._partial.pop(chan)
                self._write(stamp, chan, "<", text)

    def received(self, channel: str, text: str) -> None:
        """Log received text line by line; a trailing partial line waits for its end."""
        with self._lock:
            stamp, pending = self._partial.pop(channel, (self._now(), ""))
            pending += text.replace("\r", "")
            *lines, rest = pending.split("\n")
            for line in lines:
                self._write(stamp, channel, "<", line)
                stamp = self._now()
            if rest:
                self._partial[channel] = (stamp, rest)
            self._out().flush()

    def sent(self, channel: str, text: str, *, masked: str | None = None) -> None:
        """Log sent text; ``masked`` (a reason) replaces it with ``********``."""
        with self._lock:
            self._flush_partial()
            shown = f"{MASK} (masked: {masked})" if masked else text.rstrip("\r\n")
            self._write(self._now(), channel, ">", shown)
            self._out().flush()

    def note(self, channel: str, text: str) -> None:
        """A remark from the framework (opened, closed, host key, timeout)."""
        with self._lock:
            self._flush_partial()
            self._write(self._now(), channel, "#", text)
            self._out().flush()

    def flush(self) -> None:
        """Write out pending partial lines (a prompt awaiting input) so the file is complete."""
        with self._lock:
            self._flush_partial()
            if self._file is not None:
                self._file.flush()


class ExpectBuffer:
    """What one console received, with a cursor: ``expect()`` matches after the cursor.

    Fed with exactly the text written to the phone log (carriage returns dropped).
    """

    def __init__(self) -> None:
        self.text = ""
        self.cursor = 0
        self.closed: str | None = None  # why the stream ended, once it has
        self.changed = threading.Condition()

    #: text before the cursor beyond this many characters is dropped (a console open for a
    #: whole run sees many boots); the log file keeps everything
    KEEP = 1_000_000

    def feed(self, text: str) -> None:
        with self.changed:
            self.text += text.replace("\r", "")
            if self.cursor > self.KEEP:
                cut = self.cursor - self.KEEP // 10
                self.text, self.cursor = self.text[cut:], self.cursor - cut
            self.changed.notify_all()

    def close(self, reason: str) -> None:
        with self.changed:
            self.closed = reason
            self.changed.notify_all()

    def tail(self, lines: int = 12) -> list[str]:
        """The last ``lines`` lines received (for error messages)."""
        return self.text.rstrip("\n").split("\n")[-lines:] if self.text else []
