"""A virtual 400HD phone: power, boot, DHCP, provisioning and consoles, on its own link.

One phone lives in its own network namespace (``PREFIX-ph-NAME``, ``eth0`` with the
phone's MAC, bridged to the lab). Each power-on or reboot starts a boot session in a
thread that entered that namespace, so every packet it sends leaves through ``eth0``:

1. serial boot log, then the boot time passes (simulated duration, interrupted at once by
   power loss);
2. DHCP on the wire (framework.sim.dhcp), the leased address configured on ``eth0``, the
   phone's servers started on it: SSH, SIP (framework.sim.sip), web (framework.sim.web),
   and telnet while ``management/telnet/enabled`` is ``1`` (framework.sim.telnet);
3. provisioning: one cycle of the virtual firmware's plan (framework.sim.provisioning):
   a firmware image for this model at another version is installed (version kept in the
   phone's flash) and the phone reboots; a configuration file for this model is applied
   to the settings (kept in flash too);
4. ``MODEL login:`` on the serial line; then the lease is renewed at T1, and a SIP NOTIFY
   ``check-sync`` re-runs DHCP and provisioning (``check_sync``). The web interface
   restarts the phone or restores factory defaults (``restart``, ``reset_to_defaults``).

The firmware's plan is a timed sequence of events (framework.sim.plan), run in order inside
the cycle (framework.sim.provisioning), every delay times ``sim.time_scale``: a ``Wait``
(the random provisioning time after DHCP, uniformly drawn at each cycle), a ``Retry`` (``late-request``: the
request once more ``late_request_s`` after the cycle's other requests), each interrupted at
once by power loss or a reboot, a later re-provisioning request waits for them, and
``Provisioning done`` follows them. ``RestartAfterConfiguration`` (``reboot-after-config``):
a cycle that applied a configuration ends with ``Restarting system.`` and a boot as on
``reboot``. Real phones restart after a configuration that changed settings; the lab serves
one file in every case, so the sim restarts after any applied configuration, and the boot
it starts does not restart again (its cycle stands for "nothing changed"); a later
re-provisioning may.

Power off cancels the session, closes SSH, SIP, web and telnet and takes the link down at once
(docs/CONTRACTS.md, "Power").
"""

from __future__ import annotations

import contextlib
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path

import paramiko

from framework.netns import Netns
from framework.sim.config import SimulatedPhone
from framework.sim.console import SerialLine, SerialSession
from framework.sim.dhcp import Cancelled, DhcpClient, Lease
from framework.sim.firmware import (
    DEFAULT_SETTINGS,
    VirtualFirmware,
    url_option_code,
)
from framework.sim.provisioning import ProvisioningCycle
from framework.sim.sip import SIP_PORT, PhoneSipAgent
from framework.sim.ssh import PhoneSshServer
from framework.sim.telnet import TELNET_PORT, PhoneTelnetServer, telnet_enabled
from framework.sim.web import HTTP_PORT, PhoneWebServer

log = logging.getLogger(__name__)
_SECRET_SETTING = re.compile(r"pass|secret|community|key", re.IGNORECASE)
_CHECK_SYNC = "check-sync"
_STOP = "stop"


@dataclass
class PhoneMemory:
    """The phone's flash: installed firmware version and settings (survive power cycles)."""

    version: str
    factory_settings: dict[str, str]
    settings: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.settings:
            self.settings = dict(self.factory_settings)


@dataclass
class _Session:
    """One boot: cancelled by power loss or reboot; receives console commands."""

    cancelled: threading.Event = field(default_factory=threading.Event)
    #: (command, why): ``check-sync`` with what asked for it, or ``stop``
    commands: queue.Queue[tuple[str, str]] = field(default_factory=queue.Queue)
    #: writes to this boot's serial console (set once the boot runs)
    say: Callable[[str], None] | None = None
    #: this boot is the restart after a configuration: its boot cycle does not restart
    after_configuration: bool = False

    def cancel(self) -> None:
        self.cancelled.set()
        self.commands.put((_STOP, ""))


def factory_settings(sim: SimulatedPhone) -> dict[str, str]:
    """Factory defaults: the firmware's defaults overlaid with the rig's per-phone settings."""
    return {**DEFAULT_SETTINGS, **sim.settings}


class VirtualPhone:
    """One virtual 400HD; driven by its PDU outlet and its consoles, seen only on the wire."""

    def __init__(self, sim: SimulatedPhone, line: SerialLine, memory: PhoneMemory,
                 password: Callable[[], str], ca_file: Path | None, host_key: paramiko.PKey,
                 on_change: Callable[[], None]) -> None:
        self.sim = sim
        self.name = sim.spec.name
        self.model = sim.spec.model
        self.mac = sim.spec.mac
        self.netns = Netns(sim.netns)
        self.line = line
        self.memory = memory
        self.password = password
        self.ca_file = ca_file
        self.on_change = on_change
        self._firmware_by_version: dict[str, VirtualFirmware] = {}
        self.username = sim.spec.credentials.username
        self.ssh = PhoneSshServer(self, self.username, password, host_key)
        self.sip = PhoneSipAgent(self)
        self.web = PhoneWebServer(self, self.username, password)
        self.telnet = PhoneTelnetServer(self, self.username, password)
        self.phase = "off"
        self.address: IPv4Address | None = None
        self._session: _Session | None = None
        self._lock = threading.RLock()
        self._memory_lock = threading.Lock()
        # Fault knob (``hil sim fault no-dhcp``): the DHCP client never sends (it hangs).
        self.dhcp_silent = False

    # -- ShellTarget ------------------------------------------------------------------

    @property
    def version(self) -> str:
        return self.memory.version

    @property
    def firmware(self) -> VirtualFirmware:
        """The firmware now installed: the phone's deviations plus those the rig gives the
        installed version (``sim.phones.<name>.release_deviations``)."""
        version = self.version
        if version not in self._firmware_by_version:
            self._firmware_by_version[version] = self.sim.firmware_class(
                self.sim.deviations_for(version))
        return self._firmware_by_version[version]

    def check_sync(self, reason: str = "check-sync") -> None:
        """SIP NOTIFY ``check-sync``: DHCP and provisioning again, without a reboot, once
        the phone is up (a cycle under way finishes first). ``reason`` is shown on the
        serial console when the cycle starts."""
        with self._lock:
            if self._session is not None:
                self._session.commands.put((_CHECK_SYNC, reason))

    def reboot(self, after_configuration: bool = False) -> None:
        with self._lock:
            if self._session is None:
                return
            self._halt()
            self._start(after_configuration)

    def restart(self) -> None:
        """A restart asked for outside the shell (web interface): ``Restarting system.`` on
        the serial console, as a shell ``reboot`` prints, then a boot."""
        with self._lock:
            if self._session is None:
                return
            self._announce("Restarting system.")
            self.reboot()

    def reset_to_defaults(self) -> None:
        """Web ``reset.htm`` ``CONFIG=2``: settings back to factory defaults, then a restart
        (telnet is off again unless the factory defaults turn it on)."""
        with self._lock:
            if self._session is None:
                return
            with self._memory_lock:
                self.memory.settings = dict(self.memory.factory_settings)
            self.on_change()
            self._announce("Restoring factory defaults")
            self.restart()

    def _announce(self, text: str) -> None:
        session = self._session
        if session is not None and session.say is not None:
            session.say(text)

    # -- faults (``hil sim fault``) ---------------------------------------------------

    def set_console_dead(self, dead: bool) -> None:
        """Serial line, SSH and telnet daemons stop answering (the phone itself keeps
        running)."""
        self.line.dead = dead
        self.on_change()
        self.ssh.dead = self.telnet.dead = dead
        if dead:
            self.ssh.stop()
            self.telnet.stop()
            return
        with self._lock:
            address, session = self.address, self._session
        if address is not None:
            self.netns.thread(self.ssh.start, str(address), name=f"ssh-{self.name}").start()
        if session is not None:
            self.netns.thread(self._revive_telnet, session, name=f"telnet-{self.name}").start()

    def _revive_telnet(self, session: _Session) -> None:
        with contextlib.suppress(Cancelled):   # the boot ended meanwhile: it starts its own
            self._follow_settings(session)

    def set_dhcp_silent(self, silent: bool) -> None:
        """From the next DHCP exchange on, the phone's DHCP client sends nothing, until
        power is lost or it reboots after the fault is cleared."""
        self.dhcp_silent = silent
        self.on_change()

    def _dhcp_hangs(self, session: _Session) -> None:
        if self.dhcp_silent:
            log.info("%s: DHCP client hangs (fault no-dhcp)", self.name)
            session.cancelled.wait()
            raise Cancelled()

    # -- power ------------------------------------------------------------------------

    @property
    def powered(self) -> bool:
        return self._session is not None

    def power(self, on: bool) -> None:
        """The PDU outlet switched: on boots, off stops everything at once."""
        with self._lock:
            if on and self._session is None:
                self._start()
            elif not on and self._session is not None:
                self._halt()
                self._set_phase("off")

    def _start(self, after_configuration: bool = False) -> None:
        session = _Session(after_configuration=after_configuration)
        self._session = session
        self._set_phase("booting")
        self.netns.thread(self._boot, session, name=f"phone-{self.name}").start()

    def _halt(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.cancel()
        self.line.connect_phone(None)
        self.ssh.stop()
        self.sip.stop()
        self.web.stop()
        self.telnet.stop()
        self.netns.ip("link", "set", "eth0", "down", check=False)
        self.netns.ip("addr", "flush", "dev", "eth0", check=False)
        self.address = None

    def _set_phase(self, phase: str) -> None:
        self.phase = phase
        self.on_change()

    @contextlib.contextmanager
    def held(self, session: _Session) -> Iterator[None]:
        """Hold the phone while ``session`` is still its boot; else the boot is over."""
        with self._lock:
            if self._session is not session:
                raise Cancelled()
            yield

    # -- one boot ---------------------------------------------------------------------

    def _boot(self, session: _Session) -> None:
        console = SerialSession(self.line, self, self.username, self.password)
        say = self._speaker(session, console)
        with self._lock:
            if session.cancelled.is_set():
                return
            self.line.connect_phone(console.feed)
            session.say = say
        try:
            say(f"U-Boot 2011.12 (AudioCodes {self.model})\nDRAM:  128 MiB\n"
                f"Starting kernel ...\n\nLinux version 2.6.32 (build@audiocodes) #1 PREEMPT\n"
                f"AudioCodes {self.model} IP Phone, firmware {self.version}\n"
                f"eth0: MAC {_colon(self.mac)}")
            if session.cancelled.wait(self.sim.boot_time_s):
                return
            with self.held(session):
                self.netns.ip("link", "set", "eth0", "up")
                self._set_phase("dhcp")
            say("eth0: link up")
            lease = self._lease(session, say)
            self._provision(session, lease, say, may_restart=not session.after_configuration)
            self._follow_settings(session)
            console.login_prompt()
            with self.held(session):
                self._set_phase("up")
            self._run(session, lease, say)
        except Cancelled:
            pass
        except Exception:  # a bug in the sim must not take the lab down: log it, stay off-line
            if not session.cancelled.is_set():
                log.exception("%s: boot session failed", self.name)
                say("Kernel panic - not syncing: simulated firmware error (see the sim log)")

    def _run(self, session: _Session, lease: Lease,
             say: Callable[[str], None]) -> None:
        """Up: renew at T1, re-run provisioning on check-sync, until power loss or reboot."""
        renew_at = time.monotonic() + lease.renew_after
        while True:
            try:
                command, why = session.commands.get(
                    timeout=max(0.0, renew_at - time.monotonic()))
            except queue.Empty:
                self._dhcp_hangs(session)
                renewed = self._client(session, say).renew(lease)
                lease = renewed if renewed is not None else self._lease(session, say)
                self._configure(session, lease, say)
                renew_at = time.monotonic() + lease.renew_after
                continue
            if command == _STOP or session.cancelled.is_set():
                return
            if command == _CHECK_SYNC:
                with self.held(session):
                    self._set_phase("dhcp")
                say(f"{why}: checking provisioning")
                lease = self._lease(session, say)
                self._provision(session, lease, say)
                self._follow_settings(session)
                with self.held(session):
                    self._set_phase("up")
                renew_at = time.monotonic() + lease.renew_after

    def _speaker(self, session: _Session, console: SerialSession) -> Callable[[str], None]:
        def say(text: str) -> None:
            if not session.cancelled.is_set():
                console.write(text + "\n")
                for line in text.splitlines():
                    log.info("%s: %s", self.name, line)
        return say

    def _client(self, session: _Session, say: Callable[[str], None]) -> DhcpClient:
        sends_77 = getattr(self.firmware, "sends_user_class", True)
        return DhcpClient("eth0", self.mac, self.model, url_option_code(self.settings()),
                          session.cancelled, say, user_class=bool(sends_77))

    def _lease(self, session: _Session, say: Callable[[str], None]) -> Lease:
        self._dhcp_hangs(session)
        lease = self._client(session, say).obtain()
        self._configure(session, lease, say)
        return lease

    def _configure(self, session: _Session, lease: Lease, say: Callable[[str], None]) -> None:
        with self.held(session):
            if self.address == lease.address:
                return
            self.netns.ip("addr", "flush", "dev", "eth0")
            self.netns.ip("addr", "add", f"{lease.address}/{lease.prefix_len}", "dev", "eth0")
            if lease.router is not None:
                self.netns.ip("route", "replace", "default", "via", str(lease.router),
                              check=False)
            self.address = lease.address
            address = str(lease.address)
            self.ssh.start(address)
            if self.sim.sip:  # sim.phones.<name>.sip: false models a firmware without SIP
                self.sip.start(address, self._port("sip", SIP_PORT))
            self.web.start(address, self._port("web", HTTP_PORT))
            self.telnet.stop()
        say(f"eth0: address {lease.address}/{lease.prefix_len}")
        self.on_change()
        self._follow_settings(session)

    def _follow_settings(self, session: _Session) -> None:
        """Telnet runs while ``management/telnet/enabled`` is ``1`` (after each applied
        configuration, and at each new address)."""
        enabled = telnet_enabled(self.settings())
        with self.held(session):
            if self.address is None or enabled == self.telnet.running:
                return
            if enabled:
                self.telnet.start(str(self.address), self._port("telnet", TELNET_PORT))
            else:
                self.telnet.stop()

    def _port(self, service: str, default: int) -> int:
        """The rig's port for a phone service (``sip.port``, ``web.port``,
        ``console.telnet.port``), else the service's standard port."""
        spec = self.sim.spec
        where = getattr(spec.console, "telnet", None) if service == "telnet" \
            else getattr(spec, service, None)
        port = getattr(where, "port", None)
        return port if isinstance(port, int) else default

    # -- provisioning (framework.sim.provisioning) ---------------------------------

    def _provision(self, session: _Session, lease: Lease, say: Callable[[str], None],
                   may_restart: bool = True) -> None:
        with self.held(session):
            self._set_phase("provisioning")
        ProvisioningCycle(self, session.cancelled, lease, say).run(
            lambda: self.held(session), may_restart=may_restart)

    def settings(self) -> dict[str, str]:
        """A copy of the settings now in flash."""
        with self._memory_lock:
            return dict(self.memory.settings)

    def apply_settings(self, values: Mapping[str, str]) -> None:
        """Settings from an applied configuration file, kept in flash."""
        with self._memory_lock:
            self.memory.settings.update(values)
        self.on_change()

    def install(self, version: str) -> None:
        """A firmware image installed: the version kept in flash (the caller reboots)."""
        with self._memory_lock:
            self.memory.version = version
        self.on_change()

    # -- status -----------------------------------------------------------------------

    def status(self) -> dict[str, object]:
        """For the state file: settings that look like secrets are masked."""
        settings = {k: "***" if _SECRET_SETTING.search(k) else v
                    for k, v in self.settings().items()}
        return {"power": "on" if self.powered else "off", "phase": self.phase,
                "address": str(self.address) if self.address else None,
                "firmware": self.version, "settings": settings,
                "faults": [name for name, on in (("console-dead", self.line.dead),
                                                 ("no-dhcp", self.dhcp_silent)) if on]}


def _colon(mac: str) -> str:
    return ":".join(mac[i:i + 2] for i in range(0, 12, 2))
