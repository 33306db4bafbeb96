"""Survey, part 1: log in over each console a phone has and record what it prints.

No dialect is assumed: the console is read until it falls quiet, and its last line is the
prompt exactly as seen (login, password, shell). Then ``/etc/release`` verbatim, the MAC of
the interface and ``uname -a``, and the dialect patterns (framework.rig.shell fields) that
match what was seen are proposed: the family default where it matches, else the prompt as
seen with the login name as ``{user}`` and the model as any word.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import InputError
from framework.rig import PhoneSpec

QUIET_S = 0.5  # a console silent this long after text has finished printing its prompt
MAC_RE = re.compile(r"(?i)\b([0-9a-f]{2}(?::[0-9a-f]{2}){5})\b")
VERSION_RE = re.compile(r"^(UC_)?\d+\.\d+(\.\d+)+$")
MAC_COMMANDS = ("cat /sys/class/net/eth0/address", "ip link show eth0")


@dataclass
class ConsoleFinding:
    """What one console showed (``error``: why it could not be surveyed)."""

    kind: str
    error: str | None = None
    login_prompt: str | None = None
    password_prompt: str | None = None
    shell_prompt: str | None = None
    release: str | None = None
    mac: str | None = None
    mac_command: str | None = None
    uname: str | None = None
    release_fields: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class SurveyInputError(InputError):
    """The phone cannot be surveyed as the rig describes it (wrong password, no prompt)."""


def _quiet(con: Any, timeout: float, quiet_s: float = QUIET_S) -> str:
    """The text received after the cursor until the console has been quiet for
    ``quiet_s`` (awaited on the console's buffer, not polled), or ``timeout``."""
    buf = con.buffer
    deadline = time.monotonic() + timeout
    with buf.changed:
        seen, quiet_until = -1, 0.0
        while True:
            now = time.monotonic()
            if len(buf.text) != seen:
                seen, quiet_until = len(buf.text), now + quiet_s
            if now >= deadline or buf.closed is not None or (
                    now >= quiet_until and len(buf.text) > buf.cursor):
                break
            buf.changed.wait(max(0.01, min(quiet_until if quiet_until > now else deadline,
                                           deadline) - now))
        text = buf.text[buf.cursor:]
        buf.cursor = len(buf.text)
    return str(text)


def _last_line(text: str) -> str:
    return text.rsplit("\n", 1)[-1]


def probe_console(spec: PhoneSpec, kind: str, log_dir: Path, timeout: float) -> ConsoleFinding:
    """Log in over console ``kind`` and record prompts, release, MAC and ``uname -a``."""
    from framework.console import ConsoleError, console_for

    found = ConsoleFinding(kind)
    user = spec.credentials.username
    try:
        con = console_for(spec, kind, log_dir)
        con.open()
    except (ConsoleError, OSError, TimeoutError) as exc:
        found.error = f"{kind}: cannot connect: {str(exc).splitlines()[0]}"
        if re.search(r"(?i)auth", str(exc)):
            found.error = f"{kind}: login as {user!r} refused (wrong password?)"
        return found
    try:
        shell = _login(con, kind, user, spec, found, timeout)
        if not shell.strip():
            raise SurveyInputError(f"{kind}: no prompt within {timeout:g} s")
        found.shell_prompt = shell
        con.prompt = re.compile(re.escape(shell))
        found.release = con.run("cat /etc/release", timeout)
        found.release_fields = dict(
            line.split("=", 1) for line in found.release.splitlines() if "=" in line)
        for command in MAC_COMMANDS:
            m = MAC_RE.search(con.run(command, timeout))
            if m:
                found.mac, found.mac_command = m.group(1).lower(), command
                break
        found.uname = con.run("uname -a", timeout).strip()
    except SurveyInputError as exc:
        found.error = str(exc)
    except (ConsoleError, OSError, TimeoutError) as exc:
        found.error = f"{kind}: {str(exc).splitlines()[0]}"
    finally:
        con.close()
    return found


def _login(con: Any, kind: str, user: str, spec: PhoneSpec, found: ConsoleFinding,
           timeout: float) -> str:
    if kind != "ssh":  # SSH authenticates in the protocol: its first words are the prompt
        con.sendline("")
    text = _quiet(con, timeout)
    last = _last_line(text)
    if kind == "ssh":
        return last
    if re.search(r"(?i)password", last):  # a half-finished login: fail it
        con.sendline("")
        last = _last_line(_quiet(con, timeout))
    if not re.search(r"(?i)login|user", last):
        return last  # already at a shell
    found.login_prompt = last
    con.sendline(user)
    found.password_prompt = _last_line(_quiet(con, timeout))
    con.sendline(spec.credentials.password.resolve(), secret=True)
    text = _quiet(con, timeout)
    if re.search(r"(?i)incorrect|denied|fail", text) or re.search(r"(?i)login", _last_line(text)):
        raise SurveyInputError(f"{kind}: login as {user!r} refused ({text.strip()[:60]!r}): "
                               "check the rig credentials")
    return _last_line(text)


def propose_dialect(spec: PhoneSpec, findings: list[ConsoleFinding]) -> dict[str, Any]:
    """The ``shell:`` fields that match what the consoles showed, the family and version.

    ``error`` is set when the consoles disagree or show no firmware version."""
    from framework.phone.dialect import ShellDialect, dialect_for

    ok = [f for f in findings if f.error is None and f.shell_prompt]
    if not ok:
        return {"error": "no console could be surveyed"}
    user = spec.credentials.username
    fields = ok[0].release_fields
    version_key = next((k for k, v in fields.items() if VERSION_RE.match(v.strip())), None)
    model_key = next((k for k, v in fields.items()
                      if v.strip() and (v.strip() in spec.model or spec.model in v.strip())),
                     None)
    if version_key is None or model_key is None:
        return {"error": f"/etc/release shows no model and firmware version: {fields}"}
    version, model = fields[version_key].strip(), fields[model_key].strip()
    default = ShellDialect(family="?")
    out: dict[str, Any] = {"firmware": version, "model": model,
                           "release_fields": {"model": model_key, "version": version_key}}
    try:
        out["family"] = dialect_for(version).family
    except LookupError as exc:
        out["family"] = None
        out["error"] = str(exc)
    prompts = {f.shell_prompt for f in ok if f.shell_prompt is not None}
    patterns = set()
    for seen in prompts:
        if default.prompt_for(user).fullmatch(seen):
            patterns.add(default.shell_prompt)
        else:
            patterns.add(_generalize(seen, user, model))
    if len(patterns) > 1:
        out["error"] = f"the consoles show different prompts: {sorted(prompts)}"
    out["prompt"] = sorted(patterns)[0]
    logins = {f.login_prompt for f in ok if f.login_prompt}
    if logins:
        seen_login = sorted(logins)[0]
        out["login_prompt"] = (default.login_prompt if re.fullmatch(default.login_prompt,
                                                                     seen_login)
                               else _generalize(seen_login, user, model))
    macs = {f.mac_command for f in ok if f.mac_command}
    out["mac_commands"] = [c for c in MAC_COMMANDS if c in macs] or None
    out["mac"] = next((f.mac for f in ok if f.mac), None)
    return out


def _generalize(seen: str, user: str, model: str) -> str:
    """``seen`` as a regex: the login name as ``{user}``, the model as any word."""
    text = re.escape(seen)
    if model:
        text = text.replace(re.escape(model), r"[^\s\]@]+")
    if user:
        text = text.replace(re.escape(user), "{user}")
    return text
