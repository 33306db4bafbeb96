"""The 400HD driver: power-cycle with evidence of boot, login, identity, reboot, factory
reset, re-provisioning, settings. Broken stays broken.

Boot is detected by evidence, never by a sleep: the DHCP DISCOVER from the phone's MAC
(from the DHCP server's ``wait_for``, when one is given) and then the login prompt on the
serial console (or the SSH server answering, for a phone with SSH only). When bringing
the phone to a known state fails, the driver keeps the first reason and every later call
fails at once with it (STYLE.md, after labgrid's strategies), instead of each test case
waiting for its own timeout.

Usage::

    phone = Phone400HD.from_rig(rig, rig.phone("ph1"), Path("reports/run/consoles"),
                                dhcp=dhcp_server)
    boot = phone.power_cycle_and_wait_boot()         # BootEvidence: DISCOVER, login prompt
    release = phone.verify_identity()                # /etc/release vs the rig
    phone.set_setting("provisioning/method", "dynamic")
    phone.reprovision()                              # `provision`, then the DISCOVER
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, cast

from framework.console import Console, ConsoleError, ConsoleTimeout, console_for
from framework.phone.dialect import ShellDialect, dialect_for
from framework.power import PowerError, PowerStateUnreadable, PowerSwitch, power_switch
from framework.rig.model import PhoneSpec, Rig
from framework.rig.secrets import SecretError

log = logging.getLogger(__name__)

#: console kind -> a new, unopened console to this phone
ConsoleFactory = Callable[[str], Console]


class DhcpEvents(Protocol):
    """What the driver needs from the DHCP server: wait for a message from a MAC.

    ``since`` is ``time.time()``; a timeout raises ``TimeoutError`` (framework.dhcp's
    ``DhcpWaitTimeout`` is one). The record returned should carry ``.time``.
    """

    def wait_for(self, mac: str, msg_type: str = "DISCOVER", *, since: float,
                 timeout: float) -> Any: ...


class PhoneError(RuntimeError):
    """The phone did not do what the driver asked (it did not boot, refused the login...)."""


class IdentityMismatch(PhoneError):
    """``/etc/release`` does not match the rig (wrong phone on this outlet or console?)."""


class SettingError(PhoneError):
    """``getcfg``/``setcfg`` refused a key or value: a caller error; the phone is fine."""


class PhoneBroken(PhoneError):
    """The phone could not be brought to a known state; it stays broken for this run."""

    def __init__(self, phone: str, reason: str, since: datetime | None = None,
                 cause: BaseException | None = None) -> None:
        self.phone, self.reason, self.cause = phone, reason, cause
        self.since = since or datetime.now().astimezone()
        again = f" since {self.since:%H:%M:%S} (not retried)" if since else ""
        super().__init__(f"phone {phone} is broken{again}: {reason}")


@dataclass(frozen=True)
class PhoneRelease:
    """``/etc/release`` as read back: ``SWVERSION``, ``HW_TYPE``, ``MAC`` (12 upper hex)."""

    model: str
    mac: str
    version: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BootEvidence:
    """How we know the phone booted: when it was triggered, its DISCOVER, its prompt.

    Times are ``time.time()``; ``discover_at`` is None when no DHCP event source was given.
    """

    how: str
    started: float
    discover_at: float | None
    ready_at: float

    @property
    def seconds(self) -> float:
        return self.ready_at - self.started


@dataclass(frozen=True)
class ProvisionEvidence:
    """A console-triggered re-provisioning: when, and the DISCOVER that followed."""

    started: float
    discover_at: float | None


def model_matches(expected: str, reported: str) -> bool:
    """``440HD`` matches ``440HD`` and variants like ``440HDG`` (PROVISIONING.md, Names)."""
    expected, reported = expected.upper(), reported.upper()
    return reported == expected or (reported.startswith(expected)
                                    and not reported[len(expected)].isdigit())


class Phone400HD:
    """Drives one AudioCodes 400HD through its PDU outlet and consoles.

    ``console_factory(kind)`` makes a new console (``"serial"`` or ``"ssh"``); the serial
    console is preferred for the shell because it survives reboots and shows the boot
    (``console_kind`` overrides). With ``auto_power`` (default) a phone whose console is
    silent is switched on, or power-cycled once, before giving up; a health check turns
    that off so that looking never changes the bench.
    """

    def __init__(self, spec: PhoneSpec, power: PowerSwitch, console_factory: ConsoleFactory,
                 dhcp_events: DhcpEvents | None = None, *, boot_timeout_s: float = 120.0,
                 command_timeout_s: float = 10.0, off_time_s: float = 3.0,
                 console_kind: str | None = None, auto_power: bool = True) -> None:
        self.spec = spec
        self.power = power
        self.console_factory = console_factory
        self.dhcp = dhcp_events
        self.boot_timeout_s = boot_timeout_s
        self.command_timeout_s = command_timeout_s
        self.off_time_s = off_time_s
        try:
            self.dialect: ShellDialect = dialect_for(spec.firmware)
        except LookupError as exc:
            raise PhoneError(f"phone {spec.name}: {exc}") from None
        self.kind = console_kind or ("serial" if spec.console.serial is not None else "ssh")
        self.auto_power = auto_power
        self.prompt = self.dialect.prompt_for(spec.credentials.username)
        self.broken: PhoneBroken | None = None
        self._console: Console | None = None
        self._logged_in = False
        self._lock = threading.RLock()
        self._depth = 0

    @classmethod
    def from_rig(cls, rig: Rig, spec: PhoneSpec, console_dir: Path, *,
                 dhcp: DhcpEvents | None = None, boot_timeout_s: float = 120.0,
                 command_timeout_s: float = 10.0, off_time_s: float = 3.0,
                 console_kind: str | None = None, auto_power: bool = True) -> Phone400HD:
        """The driver for a rig phone: its PDU outlet, its consoles logging into
        ``console_dir/<phone>.console.log``."""
        power = power_switch(rig.pdu(spec.power.pdu), spec.power.outlet)

        def factory(kind: str) -> Console:  # the driver sets the dialect's prompt
            return console_for(spec, kind, console_dir)

        return cls(spec, power, factory, dhcp, boot_timeout_s=boot_timeout_s,
                   command_timeout_s=command_timeout_s, off_time_s=off_time_s,
                   console_kind=console_kind, auto_power=auto_power)

    def __repr__(self) -> str:
        state = f"broken: {self.broken.reason}" if self.broken else "ok"
        return f"Phone400HD({self.spec.name}, {self.spec.model}, {self.spec.mac}, {state})"

    # --- broken stays broken ---------------------------------------------------------------
    @contextlib.contextmanager
    def _operation(self, what: str) -> Iterator[None]:
        """Run one public operation; a failure marks the phone broken with its reason."""
        with self._lock:
            if self.broken is not None:
                raise PhoneBroken(self.spec.name, self.broken.reason, self.broken.since,
                                  self.broken.cause)
            self._depth += 1
            try:
                yield
            except SettingError:
                raise
            except (ConsoleError, PowerError, PhoneError, TimeoutError, SecretError,
                    OSError) as exc:
                if self._depth > 1 or isinstance(exc, PhoneBroken):
                    raise
                reason = f"{what}: {exc}"
                self.broken = PhoneBroken(self.spec.name, reason, cause=exc)
                self._note(f"phone marked broken: {what}: {type(exc).__name__}")
                log.error("%s", self.broken)
                raise self.broken from exc
            finally:
                self._depth -= 1

    def _note(self, text: str) -> None:
        con = self._console
        note = getattr(getattr(con, "log", None), "note", None)
        if callable(note):
            note("phone", text)

    # --- consoles --------------------------------------------------------------------------
    def _open_console(self) -> Console:
        if self._console is None:
            con = self.console_factory(self.kind)
            con.prompt = self.prompt
            con.open()
            self._console = con
            # A phone that restarts on its own (after a configuration file) logs our
            # shell session out: the next command logs in again.
            watch = getattr(con, "watch", None)
            banners = "|".join(p for p in (self.dialect.reboot_banner,
                                           self.dialect.boot_banner) if p)
            if callable(watch) and banners:
                watch(banners, self._restarted)
        return self._console

    def _restarted(self) -> None:
        self._logged_in = False

    def _drop_console(self) -> None:
        con, self._console = self._console, None
        self._logged_in = False
        if con is not None:
            con.close()

    def _shell(self) -> Console:
        """The console, logged in at a shell prompt (powering the phone up if it is silent)."""
        con = self._open_console()
        if self._logged_in:
            return con
        if self.kind == "ssh":
            con.read_until_prompt(self.command_timeout_s)
            self._logged_in = True
            return con
        self._serial_login(con, may_boot=True)
        return con

    def _outlet_off(self) -> bool:
        """True only if the PDU says the outlet is off (unreadable or failing: not known)."""
        try:
            return self.power.state() is False
        except PowerError:
            return False

    def _serial_login(self, con: Console, *, may_boot: bool) -> None:
        d = self.dialect
        if may_boot and self.auto_power and self._outlet_off():
            self._bring_up()
            may_boot = False
        con.discard()
        con.sendline("")
        try:
            found = con.expect([d.login_prompt, d.password_prompt, self.prompt],
                               self.command_timeout_s)
        except ConsoleTimeout:
            if not may_boot:
                raise
            self._bring_up()
            self._serial_login(con, may_boot=False)
            return
        if found.index == 2:
            self._logged_in = True
            return
        if found.index == 1:  # a half-finished login: fail it to get a fresh prompt
            con.sendline("")
            con.expect(d.login_prompt, self.command_timeout_s)
        self._enter_credentials(con)

    def _enter_credentials(self, con: Console) -> None:
        d, creds = self.dialect, self.spec.credentials
        con.sendline(creds.username)
        con.expect(d.password_prompt, self.command_timeout_s)
        con.sendline(creds.password.resolve(), secret=True)
        found = con.expect([self.prompt, d.login_incorrect], self.command_timeout_s)
        if found.index == 1:
            raise PhoneError(f"login as {creds.username!r} refused ({found.text}): check the "
                             f"rig credentials ({creds.password})")
        self._logged_in = True

    def _bring_up(self) -> None:
        """The console is silent: switch the outlet on if it is off, else power-cycle."""
        if not self.auto_power:
            state = "off" if self._outlet_off() else "on or unknown"
            raise PhoneError(f"console silent: no login or shell prompt within "
                             f"{self.command_timeout_s:g} s (outlet {self.spec.power.outlet} "
                             f"of {self.spec.power.pdu} is {state}; not switched: auto_power "
                             f"is off)")
        try:
            is_on = self.power.state()
        except PowerStateUnreadable:
            is_on = True
        if is_on:
            self._note("console silent although the outlet is on: power-cycling once")
            self._power_cycle()
        else:
            self._note("outlet is off: switching it on")
            since = time.time()
            self.power.on()
            self._await_boot(since, "power-on")

    # --- boot ------------------------------------------------------------------------------
    def _power_cycle(self, off_time: float | None = None) -> BootEvidence:
        if self.kind == "ssh":
            self._drop_console()
        else:
            self._open_console()
        self.power.off()
        since = time.time()  # nothing can come from the phone while it is off
        if self._console is not None:
            self._console.discard()
        self._logged_in = False
        time.sleep(self.off_time_s if off_time is None else off_time)  # supply must drain
        self.power.on()
        return self._await_boot(since, "power-cycle")

    def _await_boot(self, since: float, how: str) -> BootEvidence:
        deadline = time.monotonic() + self.boot_timeout_s
        discover_at: float | None = None
        mac = self.spec.mac_colon
        if self.dhcp is not None:
            try:
                record = self.dhcp.wait_for(mac, "DISCOVER", since=since,
                                            timeout=self.boot_timeout_s)
            except TimeoutError as exc:
                raise PhoneError(f"no DHCP DISCOVER from {mac} within {self.boot_timeout_s:g} s "
                                 f"after {how} (is it powered and linked?): {exc}") from None
            discover_at = float(getattr(record, "time", time.time()))
        if self.kind == "serial":
            con = self._open_console()
            seen = " (its DISCOVER was seen)" if discover_at else ""
            banner = self.dialect.boot_banner
            try:
                if banner is not None:
                    con.expect(banner, max(deadline - time.monotonic(), 0.5))
            except ConsoleTimeout as exc:
                raise PhoneError(f"no boot banner on the serial console within "
                                 f"{self.boot_timeout_s:g} s after {how}{seen}: {exc}") from None
            try:
                con.expect(self.dialect.login_prompt, max(deadline - time.monotonic(), 0.5))
            except ConsoleTimeout as exc:
                raise PhoneError(f"no login prompt within {self.boot_timeout_s:g} s after {how}"
                                 f"{seen}: {exc}") from None
        else:
            self._await_ssh(deadline, how)
        return BootEvidence(how, since, discover_at, time.time())

    def _await_ssh(self, deadline: float, how: str) -> None:
        """Connect until the phone's SSH server answers (it starts once the phone has an address)."""
        last = ""
        retry = threading.Event()
        while True:
            try:
                self._open_console()
                self._shell()
                return
            except ConsoleError as exc:
                self._drop_console()
                last = str(exc)
            if time.monotonic() >= deadline:
                raise PhoneError(f"SSH did not answer within {self.boot_timeout_s:g} s after "
                                 f"{how}: {last}")
            retry.wait(0.25)  # the next connection attempt, not a stand-in for an event

    def power_cycle_and_wait_boot(self, off_time: float | None = None) -> BootEvidence:
        """Cold boot through the PDU; returns the evidence (DISCOVER, login prompt)."""
        with self._operation("power-cycle"):
            return self._power_cycle(off_time)

    #: the lab runner's name for it
    power_cycle = power_cycle_and_wait_boot

    # --- shell operations ------------------------------------------------------------------
    def login(self) -> None:
        """Reach a shell prompt (logging in on serial; powering up a silent phone)."""
        with self._operation("login"):
            self._shell()

    def responsive(self, timeout: float) -> str | None:
        """Why the console does not answer (no shell or login prompt within ``timeout``),
        else None; logs in again after a restart. A health probe: unlike an operation it
        never marks the phone broken (a phone may be restarting on its own)."""
        with self._lock:
            if self.broken is not None:
                return None  # latched: the operation that broke it says why
            try:
                con = self._open_console()
                if self._logged_in and self.kind != "ssh":
                    # the shell's prompt, or a login prompt: the phone restarted on its
                    # own and its banner has not been read yet (log in again)
                    d = self.dialect
                    con.discard()
                    con.sendline("")
                    found = con.expect([self.prompt, d.login_prompt, d.password_prompt],
                                       timeout)
                    if found.index != 0:
                        self._logged_in = False
                        self._note("a login prompt where the shell was: the phone "
                                   "restarted; logging in again")
                        if found.index == 2:  # a half-finished login: fail it first
                            con.sendline("")
                            con.expect(d.login_prompt, timeout)
                        self._enter_credentials(con)
                elif self._logged_in:
                    con.run("", timeout)
                elif self.kind == "ssh":
                    con.read_until_prompt(timeout)
                    self._logged_in = True
                else:
                    self._serial_login(con, may_boot=False)
            except (ConsoleError, PhoneError, SecretError, TimeoutError, OSError) as exc:
                self._logged_in = False
                return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None

    def run(self, command: str, timeout: float | None = None) -> str:
        """Run a shell command; its output without echo and prompt."""
        with self._operation(f"running {command.split()[0] if command else 'a command'}"):
            return self._shell().run(command, timeout or self.command_timeout_s)

    def release(self) -> PhoneRelease:
        """Read ``/etc/release``: model (HW_TYPE), MAC and firmware version (SWVERSION)."""
        with self._operation("reading /etc/release"):
            out = self._shell().run(self.dialect.release_command, self.command_timeout_s)
            fields = {m.group(1): m.group(2)
                      for m in re.finditer(r"(?m)^([A-Z_]+)=(.*?)\s*$", out)}
            missing = [k for k in ("SWVERSION", "HW_TYPE", "MAC") if k not in fields]
            if missing:
                raise PhoneError(f"/etc/release lacks {', '.join(missing)}: got {out[:200]!r}")
            mac = re.sub(r"[^0-9A-Fa-f]", "", fields["MAC"]).upper()
            return PhoneRelease(fields["HW_TYPE"], mac, fields["SWVERSION"], fields)

    def verify_identity(self) -> PhoneRelease:
        """``/etc/release`` must match the rig's model, MAC and firmware; else the phone is
        broken (a wrong phone behind this outlet or console makes every verdict wrong)."""
        with self._operation("checking identity"):
            got = self.release()
            spec = self.spec
            wrong = [f"{what} {have} (rig says {want})" for what, want, have, ok in (
                ("model", spec.model, got.model, model_matches(spec.model, got.model)),
                ("MAC", spec.mac, got.mac, got.mac == spec.mac),
                ("firmware", spec.firmware, got.version, got.version == spec.firmware))
                if not ok]
            if wrong:
                raise IdentityMismatch(f"/etc/release reports {'; '.join(wrong)}")
            return got

    def _restart(self, what: str, command: str, banner: str) -> BootEvidence:
        con = self._shell()
        since = time.time()
        con.discard()
        con.sendline(command)
        con.expect(banner, self.command_timeout_s)
        self._logged_in = False
        if self.kind == "ssh":
            self._drop_console()
        return self._await_boot(since, what)

    def reboot(self) -> BootEvidence:
        """Soft reboot from the shell (``reboot``), then wait for the boot evidence."""
        with self._operation("reboot"):
            return self._restart("reboot", self.dialect.reboot_command,
                                 self.dialect.reboot_banner)

    def factory_reset(self) -> BootEvidence:
        """Factory defaults (``factory_reset``); the phone reboots with default settings."""
        with self._operation("factory reset"):
            return self._restart("factory reset", self.dialect.factory_reset_command,
                                 self.dialect.factory_reset_banner)

    def can_reprovision(self) -> bool:
        """Whether this firmware family can re-provision from the shell (else: power-cycle)."""
        return self.dialect.provision_command is not None

    def reprovision(self, *, wait_discover: bool = True) -> ProvisionEvidence:
        """Re-run DHCP and provisioning without a cold boot (``provision``, like SIP NOTIFY
        check-sync, PROVISIONING.md); waits for the phone's DISCOVER when it can."""
        with self._operation("re-provisioning"):
            command = self.dialect.provision_command
            if command is None:
                raise PhoneError(f"firmware family {self.dialect.family} has no shell "
                                 f"re-provisioning command; power-cycle instead")
            con = self._shell()
            since = time.time()
            out = con.run(command, self.command_timeout_s)
            if not re.search(self.dialect.provision_banner, out):
                raise PhoneError(f"`{command}` printed {out[:120]!r}, expected "
                                 f"{self.dialect.provision_banner!r}")
            discover_at = None
            if wait_discover and self.dhcp is not None:
                try:
                    record = self.dhcp.wait_for(self.spec.mac_colon, "DISCOVER", since=since,
                                                timeout=self.boot_timeout_s)
                except TimeoutError as exc:
                    raise PhoneError(f"no DHCP DISCOVER after `{command}`: {exc}") from None
                discover_at = float(getattr(record, "time", time.time()))
            return ProvisionEvidence(since, discover_at)

    def get_setting(self, key: str) -> str:
        """A phone setting (``getcfg KEY``), e.g. ``provisioning/url_option_value``."""
        _check_token(key, "setting key")
        with self._operation(f"reading setting {key}"):
            out = self._shell().run(self.dialect.get_command.format(key=key),
                                    self.command_timeout_s)
            if re.search(self.dialect.unknown_setting, out):
                raise SettingError(f"phone {self.spec.name}: getcfg {key}: {out.strip()}")
            lines = [line for line in out.splitlines() if line.strip()]
            # the value is the last line; asynchronous boot/provisioning messages come earlier
            return lines[-1].strip() if lines else ""

    def set_setting(self, key: str, value: str) -> None:
        """Change a phone setting (``setcfg KEY VALUE``) and read it back."""
        _check_token(key, "setting key")
        if "\n" in value or "\r" in value:
            raise SettingError(f"phone {self.spec.name}: value for {key} contains a line break")
        with self._operation(f"setting {key}"):
            out = self._shell().run(self.dialect.set_command.format(key=key, value=value),
                                    self.command_timeout_s).strip()
            # setcfg prints nothing; whatever did print (an error, or the phone's own
            # asynchronous messages on a serial line) is judged by the read-back.
            back = self.get_setting(key)
            if back != value:
                said = f" (it printed {out!r})" if out else ""
                raise SettingError(f"phone {self.spec.name}: setcfg {key} {value!r} did not "
                                   f"stick: getcfg says {back!r}{said}")
            if out:
                self._note(f"setcfg {key}: read back as set; it also printed {out[:120]!r}")

    def watch_provisioning_done(self, callback: Callable[[], None]) -> Callable[[], None] | None:
        """Call ``callback`` when the console shows that a provisioning cycle is over
        (``ShellDialect.provisioning_done``); returns the function that stops watching, or
        None when the family prints no such line or no console is open."""
        con = self._console
        pattern = self.dialect.provisioning_done
        watch = getattr(con, "watch", None)
        if pattern is None or not callable(watch):
            return None
        return cast(Callable[[], None], watch(pattern, callback))

    def watch_restart(self, callback: Callable[[], None]) -> Callable[[], None] | None:
        """Call ``callback`` when the console shows the phone restarting on its own (its
        reboot banner: a power cut prints none, so the trigger's own boot is not taken
        for one); returns the function that stops watching, or None when no console is
        open (an SSH console dies with the phone and shows nothing)."""
        con = self._console
        pattern = self.dialect.reboot_banner
        watch = getattr(con, "watch", None)
        if not pattern or not callable(watch):
            return None
        return cast(Callable[[], None], watch(pattern, callback))

    # --- evidence and teardown ---------------------------------------------------------------
    @property
    def console_log(self) -> Path | None:
        con = self._console
        return con.log_path if con is not None else None

    def console_excerpt(self, since: float) -> str:
        """The console log lines written at or after ``since`` (``time.time()``)."""
        path = self.console_log
        if path is None or not path.exists():
            return ""
        out = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            stamp = line.split(" ", 1)[0]
            try:
                at = datetime.fromisoformat(stamp).timestamp()
            except ValueError:
                continue
            if at >= since:
                out.append(line)
        return "\n".join(out) + ("\n" if out else "")

    def close(self) -> None:
        """Close the consoles (the phone keeps running)."""
        with self._lock:
            self._drop_console()


def _check_token(key: str, what: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_./\-\[\]]+", key):
        raise SettingError(f"{what} {key!r}: letters, digits and _ . / - [ ] only")
