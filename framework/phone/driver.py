"""The 400HD driver: identity on the shell; reboot from the shell or the web interface;
factory defaults from the web interface; SIP NOTIFY check-sync; power-cycle with evidence
of boot and the broken latch of framework.phone.shell.

Only what a real 400HD has (REAL-PHONE.md, "Control paths"): its PDU outlet, its BusyBox
shell (serial, SSH, telnet), its web interface and its SIP user agent. Settings change
through the configuration file the phone fetches, never through the driver.

Usage::

    phone = Phone400HD.from_rig(rig, rig.phone("ph1"), Path("reports/run/consoles"),
                                dhcp=dhcp_server)
    boot = phone.power_cycle_and_wait_boot()         # BootEvidence: DISCOVER, login prompt
    release = phone.verify_identity()                # /etc/release vs the rig
    trigger = phone.check_sync()                     # NOTIFY answered, then the DISCOVER
    boot = phone.web_reboot()                        # reboot.htm, then boot evidence
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from framework.console import Console, console_for
from framework.phone.errors import IdentityMismatch, PhoneError
from framework.phone.shell import SESSION_KINDS, BootEvidence, DhcpEvents, PhoneShell
from framework.phone.sip import T1, send_check_sync
from framework.phone.web import PhoneWeb, WebAnswer
from framework.power import power_switch
from framework.rig.model import PhoneSpec, Rig


@dataclass(frozen=True)
class PhoneRelease:
    """``/etc/release`` as read back (``HW_TYPE``, ``SWVERSION``, all its ``fields``) and
    the MAC of the phone's interface (12 upper hex)."""

    model: str
    mac: str
    version: str
    fields: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TriggerEvidence:
    """A provisioning cycle triggered without a reboot: ``how`` (``check-sync``), when the
    request was first sent and when the phone accepted it (``time.time()``), its answer's
    status line, and the DISCOVER that followed (None when no DHCP event source was given).
    ``transmissions`` and ``call_id`` identify the SIP transaction in a capture."""

    how: str
    sent_at: float
    answered_at: float
    status: str
    discover_at: float | None
    transmissions: int = 1
    call_id: str = ""


def model_matches(expected: str, reported: str) -> bool:
    """``440HD`` matches ``440HD`` and variants like ``440HDG`` (PROVISIONING.md, Names)."""
    expected, reported = expected.upper(), reported.upper()
    return reported == expected or (reported.startswith(expected)
                                    and not reported[len(expected)].isdigit())


class Phone400HD(PhoneShell):
    """Drives one AudioCodes 400HD through its PDU outlet, consoles, web interface and SIP:
    its identity, restarts and check-sync, on the shell, power and boot evidence of
    ``PhoneShell`` (which says what the constructor's arguments mean).
    """

    #: SIP T1 of the check-sync transaction (RFC 3261: 0.5 s; Timer F is 64*T1)
    sip_t1_s: float = T1
    #: how long one web request may take
    web_timeout_s: float = 10.0

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

    def release(self) -> PhoneRelease:
        """Read ``/etc/release`` (model ``HW_TYPE``, version ``SWVERSION``: the dialect's
        keys) and the MAC of the phone's interface (``ShellDialect.mac_commands``)."""
        with self._operation("reading /etc/release"):
            d = self.dialect
            out = self._shell().run(d.release_command, self.command_timeout_s)
            fields = {m.group(1): m.group(2)
                      for m in re.finditer(r"(?m)^([A-Z_]+)=(.*?)\s*$", out)}
            keys = (d.release_model_field, d.release_version_field)
            missing = [k for k in keys if k not in fields]
            if missing:
                raise PhoneError(f"/etc/release lacks {', '.join(missing)}: got {out[:200]!r}")
            return PhoneRelease(fields[keys[0]], self._interface_mac(), fields[keys[1]],
                                fields)

    def _interface_mac(self) -> str:
        """The MAC of the phone's interface, 12 upper hex (the first command that prints one)."""
        said = []
        for command in self.dialect.mac_commands:
            out = self._shell().run(command, self.command_timeout_s)
            found = _MAC_AFTER_ETHER.search(out) or _MAC.search(out)
            if found:
                return re.sub(r"[^0-9A-Fa-f]", "", found.group("mac")).upper()
            said.append(f"`{command}` printed {out.strip()[:80]!r}")
        raise PhoneError(f"no MAC address from the phone's interface: {'; '.join(said)}")

    def verify_identity(self) -> PhoneRelease:
        """``/etc/release`` and the interface MAC must match the rig's model, MAC and
        firmware; else the phone is broken (a wrong phone behind this outlet or console
        makes every verdict wrong)."""
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

    def reboot(self) -> BootEvidence:
        """Soft reboot from the shell (``reboot``), then wait for the boot evidence."""
        with self._operation("reboot"):
            con = self._shell()
            since = time.time()
            con.discard()
            con.sendline(self.dialect.reboot_command)
            con.expect(self.dialect.reboot_banner, self.command_timeout_s)
            self._logged_in = False
            if self.kind in SESSION_KINDS:
                self._drop_console()
            return self._await_boot(since, "reboot")

    # --- the web interface -----------------------------------------------------------------
    def web(self) -> PhoneWeb:
        """The phone's web interface client (the rig's ``web:``; its credentials default to
        the shell's)."""
        spec = self.spec
        web = spec.web
        username = web.username or spec.credentials.username
        password = (web.password or spec.credentials.password).resolve()
        return PhoneWeb(str(spec.address), username=username, password=password,
                        scheme=web.scheme, port=web.port, verify_tls=web.verify_tls,
                        timeout=self.web_timeout_s)

    def web_reboot(self) -> BootEvidence:
        """Reboot through the web interface (``/mainform.cgi/reboot.htm``), then wait for
        the boot evidence."""
        with self._operation("web reboot"):
            return self._web_restart("web reboot", PhoneWeb.reboot)

    def web_reset_to_defaults(self) -> BootEvidence:
        """Factory defaults through the web interface (``/mainform.cgi/reset.htm``,
        ``CONFIG=2``); the phone restarts with them: wait for the boot evidence."""
        with self._operation("web factory defaults"):
            return self._web_restart("web factory defaults", PhoneWeb.reset_to_defaults)

    def _web_restart(self, how: str, action: Callable[[PhoneWeb], WebAnswer]) -> BootEvidence:
        client = self.web()
        if self.kind == "serial":
            # open before asking, so the boot banner is read from the wire; what came
            # earlier cannot pass for it
            self._open_console().discard()
        since = time.time()
        answer = action(client)
        self._note(f"{how}: {client.url} answered "
                   f"{answer.status if answer.status is not None else 'nothing (restarting)'}")
        self._logged_in = False
        if self.kind in SESSION_KINDS:
            self._drop_console()
        return self._await_boot(since, how)

    # --- SIP -------------------------------------------------------------------------------
    def check_sync(self, *, wait_discover: bool = True) -> TriggerEvidence:
        """SIP NOTIFY ``Event: check-sync`` to the phone (its address, the rig's
        ``sip.port``): the phone re-runs DHCP and provisioning without a reboot
        (REAL-PHONE.md, "Control paths"). Returns once it accepted (2xx) and, with a DHCP
        event source, once its DISCOVER came."""
        with self._operation("check-sync"):
            spec = self.spec
            host, port = str(spec.address), spec.sip.port
            answer = send_check_sync(host, port, mac=spec.mac, t1=self.sip_t1_s)
            self._note(f"SIP NOTIFY check-sync to {host}:{port}: {answer.status} "
                       f"({answer.transmissions} transmission(s))")
            discover_at = None
            if wait_discover and self.dhcp is not None:
                try:
                    record = self.dhcp.wait_for(spec.mac_colon, "DISCOVER",
                                                since=answer.sent_at,
                                                timeout=self.boot_timeout_s)
                except TimeoutError as exc:
                    raise PhoneError(f"no DHCP DISCOVER from {spec.mac_colon} within "
                                     f"{self.boot_timeout_s:g} s after check-sync was "
                                     f"accepted ({answer.status}): {exc}") from None
                discover_at = float(getattr(record, "time", time.time()))
            return TriggerEvidence("check-sync", answer.sent_at, answer.answered_at,
                                   answer.status, discover_at, answer.transmissions,
                                   answer.call_id)


_MAC = re.compile(r"(?P<mac>\b[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}\b)")
_MAC_AFTER_ETHER = re.compile(r"link/ether\s+" + _MAC.pattern)
