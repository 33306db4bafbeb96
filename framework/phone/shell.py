"""A phone's shell through its console: the console and its login, the boot it waits for
(power-up with evidence), the broken latch and the watching for restarts.

The part of the driver that does not depend on what the phone is asked to do:
framework.phone.driver builds the 400HD's operations (identity, reboots, factory defaults,
check-sync) on top of ``PhoneShell``.

Boot is detected by evidence, never by a sleep: the DHCP DISCOVER from the phone's MAC
(from the DHCP server's ``wait_for``, when one is given) and then the login prompt on the
serial console (or the SSH or telnet server answering, for a phone without serial). When bringing
the phone to a known state fails, the driver keeps the first reason and every later call
fails at once with it (STYLE.md, after labgrid's strategies), instead of each test case
waiting for its own timeout.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, cast

from framework.console import Console, ConsoleError, ConsoleTimeout
from framework.errors import first_line
from framework.phone.dialect import ShellDialect, dialect_for
from framework.phone.errors import PhoneBroken, PhoneError
from framework.power import PowerError, PowerStateUnreadable, PowerSwitch
from framework.rig.model import PhoneSpec
from framework.rig.secrets import SecretError

log = logging.getLogger(__name__)

#: console kind -> a new, unopened console to this phone
ConsoleFactory = Callable[[str], Console]
#: console kinds whose session ends when the phone restarts (its server dies with it)
SESSION_KINDS = ("ssh", "telnet")
_SERVER_NAMES = {"ssh": "SSH", "telnet": "telnet"}
#: what a health probe turns into "the console does not answer"
_PROBE_ERRORS = (ConsoleError, PhoneError, SecretError, TimeoutError, OSError)


class DhcpEvents(Protocol):
    """What the driver needs from the DHCP server: wait for a message from a MAC.

    ``since`` is ``time.time()``; a timeout raises ``TimeoutError`` (framework.dhcp's
    ``DhcpWaitTimeout`` is one). The record returned should carry ``.time``.
    """

    def wait_for(self, mac: str, msg_type: str = "DISCOVER", *, since: float,
                 timeout: float) -> Any: ...


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


class PhoneShell:
    """One phone's console shell, power-up and boot evidence; the broken latch.

    ``console_factory(kind)`` makes a new console (``"serial"``, ``"ssh"`` or
    ``"telnet"``); the serial console is preferred for the shell because it survives
    reboots and shows the boot, then SSH, then telnet (``console_kind`` overrides). With
    ``auto_power`` (default) a phone whose console is silent is switched on, or
    power-cycled once, before giving up; a health check turns that off so that looking
    never changes the bench.
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
            self.dialect: ShellDialect = dialect_for(spec.firmware).with_shell(spec.shell)
        except LookupError as exc:
            raise PhoneError(f"phone {spec.name}: {exc}") from None
        self.kind = console_kind or next(
            (kind for kind in ("serial", "ssh", "telnet")
             if getattr(spec.console, kind, None) is not None), "serial")
        self.auto_power = auto_power
        self.prompt = self.dialect.prompt_for(spec.credentials.username)
        self.broken: PhoneBroken | None = None
        self._console: Console | None = None
        self._logged_in = False
        #: the console showed a restart banner since the last login: the phone is booting
        #: and its login prompt may be a boot away (see ``responsive``)
        self._restart_seen = False
        #: when the phone last answered us (``time.time()``): a restart that ended an SSH or
        #: telnet session shows as a DHCP DISCOVER after it
        self._last_seen = time.time()
        self._lock = threading.RLock()
        self._depth = 0

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
                self._last_seen = time.time()
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
        if self._console is not None and getattr(self._console, "is_open", True) is False:
            self._drop_console()  # its stream ended (a restart closed the session)
        if self._console is None:
            con = self.console_factory(self.kind)
            con.prompt = self.prompt
            con.open()
            self._console = con
            # A phone that restarts on its own (after a configuration file) logs our
            # shell session out: the next command logs in again.
            watch = getattr(con, "watch", None)
            banners = "|".join(self._banners())
            if callable(watch) and banners:
                watch(banners, self._restarted)
        return self._console

    def _restarted(self) -> None:
        self._logged_in = False
        self._restart_seen = True

    def _banners(self) -> list[str]:
        d = self.dialect
        return [p for p in (d.reboot_banner, d.boot_banner) if p]

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
        # a telnet server answers only while the phone is up: nothing to power up here
        self._serial_login(con, may_boot=self.kind == "serial")
        return con

    def _outlet_off(self) -> bool:
        """True only if the PDU says the outlet is off (unreadable or failing: not known)."""
        try:
            return self.power.state() is False
        except PowerError:
            return False

    def _serial_login(self, con: Console, *, may_boot: bool, wait: float | None = None
                      ) -> None:
        """Log in on the serial console; ``wait``: how long the first prompt may take
        (default ``command_timeout_s``; a restarting phone's is a boot away)."""
        d = self.dialect
        if may_boot and self.auto_power and self._outlet_off():
            self._bring_up()
            may_boot = False
        con.discard()
        con.sendline("")
        try:
            found = con.expect([d.login_prompt, d.password_prompt, self.prompt],
                               wait or self.command_timeout_s)
        except ConsoleTimeout:
            if not may_boot:
                raise
            self._bring_up()
            self._serial_login(con, may_boot=False)
            return
        if found.index == 2:
            self._logged_in = True
            self._restart_seen = False
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
        self._restart_seen = False

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
        if self.kind in SESSION_KINDS:
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
            self._await_session(deadline, how)
        return BootEvidence(how, since, discover_at, time.time())

    def _await_session(self, deadline: float, how: str) -> None:
        """Connect and log in until the phone's SSH or telnet server answers (it starts once
        the phone has an address)."""
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
                raise PhoneError(f"{_SERVER_NAMES.get(self.kind, self.kind)} did not answer "
                                 f"within {self.boot_timeout_s:g} s after {how}: {last}")
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
        never marks the phone broken (a phone may be restarting on its own).

        A serial console that shows the phone restarting (its reboot or boot banner, met
        by the probe or seen since the last login) answers: the phone is booting, and its
        login prompt is awaited as a boot is (``boot_timeout_s``), not for ``timeout``. A
        phone that restarts on its own after a configuration file may meet the probe at
        any point of its boot, and a real one takes a minute to reach its prompt.

        An SSH or telnet session that fails (the phone ended it, or it does not answer)
        while a new one fails too is a phone restarting when DHCP says so (a DISCOVER from
        its MAC since it last answered): its server is then awaited, the DISCOVER and the
        server together within one ``boot_timeout_s``. No DISCOVER: the console does not
        answer."""
        with self._lock:
            if self.broken is not None:
                return None  # latched: the operation that broke it says why
            # a session we had (open, or ended under us: its reader may not have seen the
            # end yet) that fails now may have died with a restarting phone
            had_session = self.kind in SESSION_KINDS and self._console is not None
            since = self._last_seen
            try:
                self._probe(timeout)
            except _PROBE_ERRORS as exc:
                self._logged_in = False
                problem = first_line(exc)
                if not had_session:
                    return problem
                late = self._after_lost_session(since, problem)
                if late is not None:
                    return late
            self._last_seen = time.time()
        return None

    def _probe(self, timeout: float) -> None:
        con = self._open_console()
        if self._logged_in and self.kind != "ssh":
            # the shell's prompt, or a login prompt or a restart banner: the phone
            # restarted on its own and its banner has not been read yet
            d = self.dialect
            con.discard()
            con.sendline("")
            found = con.expect([self.prompt, d.login_prompt, d.password_prompt,
                                *self._banners()], timeout)
            if found.index != 0:
                self._logged_in = False
                self._note("a login prompt or a restart where the shell was: the phone "
                           "restarted; logging in again")
                if found.index >= 3:  # booting: its login prompt is a boot away
                    con.expect(d.login_prompt, self.boot_timeout_s)
                elif found.index == 2:  # a half-finished login: fail it first
                    con.sendline("")
                    con.expect(d.login_prompt, timeout)
                self._enter_credentials(con)
        elif self._logged_in:
            con.run("", timeout)
        elif self.kind == "ssh":
            con.read_until_prompt(timeout)
            self._logged_in = True
        else:
            self._serial_login(con, may_boot=False, wait=self.boot_timeout_s
                               if self._restart_seen else None)

    def _after_lost_session(self, since: float, problem: str) -> str | None:
        """Our SSH or telnet session failed and a new one is refused: restarting, if
        DHCP shows its DISCOVER since ``since``; then its server is awaited as a boot is."""
        server = _SERVER_NAMES.get(self.kind, self.kind)
        if self.dhcp is None:
            return f"{problem} (its {server} session ended; no DHCP events to tell a restart)"
        deadline = time.monotonic() + self.boot_timeout_s  # one boot: DISCOVER, then server
        try:
            self.dhcp.wait_for(self.spec.mac_colon, "DISCOVER", since=since,
                               timeout=self.boot_timeout_s)
        except TimeoutError:
            return (f"{problem} (its {server} session ended and no DHCP DISCOVER followed "
                    f"within {self.boot_timeout_s:g} s)")
        try:
            self._await_session(deadline,
                                "its session failed and the phone sent a DHCP DISCOVER")
        except _PROBE_ERRORS as exc:
            return first_line(exc)
        self._note(f"the {server} session ended and the phone sent a DHCP DISCOVER: it "
                   f"restarted; logged in again")
        return None

    def run(self, command: str, timeout: float | None = None) -> str:
        """Run a shell command; its output without echo and prompt."""
        with self._operation(f"running {command.split()[0] if command else 'a command'}"):
            return self._shell().run(command, timeout or self.command_timeout_s)

    def watch_provisioning_done(self, callback: Callable[[], None]) -> Callable[[], None] | None:
        """Call ``callback`` when the console shows that a provisioning cycle is over
        (``ShellDialect.provisioning_done``); returns the function that stops watching, or
        None when the family prints no such line or no console is open."""
        return self._watch(self.dialect.provisioning_done, callback)

    def watch_restart(self, callback: Callable[[], None]) -> Callable[[], None] | None:
        """Call ``callback`` when the console shows the phone restarting on its own (its
        reboot banner: a power cut prints none, so the trigger's own boot is not taken
        for one); returns the function that stops watching, or None when no console is
        open (an SSH console dies with the phone and shows nothing)."""
        return self._watch(self.dialect.reboot_banner, callback)

    def _watch(self, pattern: str | None, callback: Callable[[], None]
               ) -> Callable[[], None] | None:
        """Watch the open console for ``pattern`` (a console that cannot watch, or no
        pattern: None)."""
        watch = getattr(self._console, "watch", None)
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
