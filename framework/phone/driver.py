"""The 400HD driver: identity, reboot, factory reset, re-provisioning, settings, on the
shell, power-cycle with evidence of boot and broken latch of framework.phone.shell.

Usage::

    phone = Phone400HD.from_rig(rig, rig.phone("ph1"), Path("reports/run/consoles"),
                                dhcp=dhcp_server)
    boot = phone.power_cycle_and_wait_boot()         # BootEvidence: DISCOVER, login prompt
    release = phone.verify_identity()                # /etc/release vs the rig
    phone.set_setting("provisioning/method", "dynamic")
    phone.reprovision()                              # `provision`, then the DISCOVER
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from framework.console import Console, console_for
from framework.phone.errors import IdentityMismatch, PhoneError, SettingError
from framework.phone.shell import BootEvidence, DhcpEvents, PhoneShell
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
class ProvisionEvidence:
    """A console-triggered re-provisioning: when, and the DISCOVER that followed."""

    started: float
    discover_at: float | None


def model_matches(expected: str, reported: str) -> bool:
    """``440HD`` matches ``440HD`` and variants like ``440HDG`` (PROVISIONING.md, Names)."""
    expected, reported = expected.upper(), reported.upper()
    return reported == expected or (reported.startswith(expected)
                                    and not reported[len(expected)].isdigit())


class Phone400HD(PhoneShell):
    """Drives one AudioCodes 400HD through its PDU outlet and consoles: its identity,
    restarts, re-provisioning and settings, on the shell, power and boot evidence of
    ``PhoneShell`` (which says what the constructor's arguments mean).
    """

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


_MAC = re.compile(r"(?P<mac>\b[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}\b)")
_MAC_AFTER_ETHER = re.compile(r"link/ether\s+" + _MAC.pattern)


def _check_token(key: str, what: str) -> None:
    if not re.fullmatch(r"[A-Za-z0-9_./\-\[\]]+", key):
        raise SettingError(f"{what} {key!r}: letters, digits and _ . / - [ ] only")
