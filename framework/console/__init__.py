"""Consoles to a phone's Linux shell behind one expect-style protocol (serial, SSH, telnet).

Every byte in and out goes to one timestamped log per phone (framework.console.log),
which is also what ``expect()`` reads and what reports attach. Console kinds are picked
by name from ``CONSOLE_KINDS`` (no if/elif chains).

Usage::

    con = console_for(phone, "serial", log_dir=Path("reports/run1/consoles"))
    with con:
        con.expect(r"login: $", timeout=60)

Imports (layer 9 of pyproject.toml's contracts): the layers below it (services, dhcp,
rig, resolution, records, errors, netns); never framework.power, its independent sibling,
nor anything above (phone, bench, runner...).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from framework.console.base import (
    DEFAULT_PROMPT,
    PASSWORD_PROMPT,
    Console,
    ConsoleClosed,
    ConsoleError,
    ConsoleMatch,
    ConsoleTimeout,
    Pattern,
    StreamConsole,
)
from framework.console.log import PhoneLog
from framework.console.serial import SerialConsole
from framework.console.ssh import HOST_KEY_POLICIES, SshConsole, fingerprint
from framework.console.telnet import TelnetConsole
from framework.rig.model import PhoneSpec

__all__ = [
    "CONSOLE_KINDS",
    "DEFAULT_PROMPT",
    "HOST_KEY_POLICIES",
    "PASSWORD_PROMPT",
    "Console",
    "ConsoleClosed",
    "ConsoleError",
    "ConsoleMatch",
    "ConsoleTimeout",
    "Pattern",
    "PhoneLog",
    "SerialConsole",
    "SshConsole",
    "StreamConsole",
    "TelnetConsole",
    "console_for",
    "console_log_path",
    "fingerprint",
]


def console_log_path(phone: PhoneSpec, log_dir: Path) -> Path:
    """The one console log of ``phone`` in ``log_dir``."""
    return log_dir / f"{phone.name}.console.log"


def _serial(phone: PhoneSpec, log: PhoneLog, prompt: Pattern) -> StreamConsole:
    spec = phone.console.serial
    if spec is None:
        raise ConsoleError(f"{phone.name}: the rig gives no serial console")
    return SerialConsole(f"{phone.name} serial", log, spec.url, baudrate=spec.baudrate,
                         prompt=prompt)


def _ssh(phone: PhoneSpec, log: PhoneLog, prompt: Pattern) -> StreamConsole:
    spec = phone.console.ssh
    if spec is None:
        raise ConsoleError(f"{phone.name}: the rig gives no SSH console")
    return SshConsole(f"{phone.name} ssh", log, spec.host or str(phone.address), spec.port,
                      phone.credentials.username, phone.credentials.password.resolve(),
                      host_key_policy=spec.host_key_policy, known_hosts=spec.known_hosts,
                      prompt=prompt)


def _telnet(phone: PhoneSpec, log: PhoneLog, prompt: Pattern) -> StreamConsole:
    spec = phone.console.telnet
    if spec is None:
        raise ConsoleError(f"{phone.name}: the rig gives no telnet console")
    return TelnetConsole(f"{phone.name} telnet", log, spec.host or str(phone.address),
                         spec.port, prompt=prompt)


#: Console kind -> constructor from the rig's phone record.
CONSOLE_KINDS: dict[str, Callable[[PhoneSpec, PhoneLog, Pattern], StreamConsole]] = {
    "serial": _serial,
    "ssh": _ssh,
    "telnet": _telnet,
}


def console_for(phone: PhoneSpec, kind: str, log_dir: Path, *,
                prompt: Pattern = DEFAULT_PROMPT) -> StreamConsole:
    """A (not yet opened) console of ``kind`` to ``phone``, logging into its one log file.

    The phone's password is registered with the log first, so it is masked wherever it
    would appear.
    """
    try:
        make = CONSOLE_KINDS[kind]
    except KeyError:
        raise ConsoleError(f"unknown console kind {kind!r} "
                           f"(known: {', '.join(CONSOLE_KINDS)})") from None
    log = PhoneLog.for_path(console_log_path(phone, log_dir))
    log.add_secret(phone.credentials.password.resolve())
    return make(phone, log, prompt)
