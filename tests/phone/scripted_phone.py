"""A scripted 400HD on the far end of a serial line (a pty), for console and driver tests.

It prints and answers what docs/CONTRACTS.md says the (virtual or real) phone does on its
serial console: a boot log, then ``MODEL login: ``, ``Password: ``, the prompt
``[admin@440HD ~]$ `` (on a ``UC_`` version the real UC 3.4 phone's
``[admin@C450HD /home/ipphone]# ``), and the BusyBox commands a real phone has:
``cat /etc/release`` (the real phone's keys: ``HW_TYPE``, ``BUILD_PROFILE``, ``SWVERSION``,
no ``MAC=``), the MAC of ``eth0`` (``cat /sys/class/net/eth0/address``; ``ip link show
eth0``), ``echo``, ``reboot``, ``exit``. There are no vendor commands: what the phone does
for its web interface and SIP (restart, factory defaults, check-sync) the test peers ask
of it through ``restart``, ``reset_to_defaults`` and ``check_sync``. Like a tty in cooked
mode it echoes what is typed (not the password) and ends lines with CR LF. Knobs let a
test make it misbehave: no DHCP, stuck boot, other identity.

``ScriptedPhone`` also offers the two test doubles the driver needs: ``outlet`` (a
``PowerSwitch`` that powers this phone) and ``dhcp`` (the ``wait_for`` event source).
A session phone (``attach_shell``, ``attach_login``: SSH, telnet) ends its session when it
restarts, as the phone's sshd and telnetd die with it.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field


class DhcpEvents:
    """DHCP messages by MAC, awaited as events (the DHCP server's ``wait_for`` shape)."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, str]] = []  # (time, MAC, message)
        self.changed = threading.Condition()

    def record(self, mac: str, message: str) -> None:
        with self.changed:
            self.events.append((time.time(), mac.upper(), message))
            self.changed.notify_all()

    def wait_for(self, mac: str, msg_type: str = "DISCOVER", *, since: float, timeout: float
                 ) -> tuple[float, str, str]:
        message = msg_type
        key = mac.replace(":", "").upper()
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for event in self.events:
                    if event[0] >= since and event[1] == key and event[2] == message:
                        return event
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no DHCP {message} from {key} within {timeout:g} s")
                self.changed.wait(remaining)


@dataclass
class ScriptedOutlet:
    """A ``PowerSwitch`` whose outlet feeds the scripted phone."""

    phone: ScriptedPhone
    switched: list[str] = field(default_factory=list)

    def on(self) -> None:
        self.switched.append("on")
        self.phone.power_on()

    def off(self) -> None:
        self.switched.append("off")
        self.phone.power_off()

    def cycle(self, off_time: float = 3.0) -> None:
        self.off()
        time.sleep(min(off_time, 0.01))
        self.on()

    def state(self) -> bool:
        return self.phone.powered


class ScriptedPhone:
    """The phone's side of a serial line: reads and writes the pty master ``fd``."""

    def __init__(self, fd: int, *, model: str = "440HD", mac: str = "00908F000001",
                 version: str = "2.2.8.61", username: str = "admin", password: str = "1234",
                 echo: bool = True, boot_time: float = 0.05, send_discover: bool = True,
                 boot_hangs: bool = False, fd_out: int | None = None,
                 late_prompt: bool = False, sysfs: bool = True,
                 dhcp: DhcpEvents | None = None) -> None:
        self.fd = fd
        self.fd_out = fd if fd_out is None else fd_out
        self.ended = threading.Event()  # set when the line goes away or the shell exits
        self.model, self.mac, self.version = model, mac, version
        self.username, self.password = username, password
        self.echo, self.boot_time = echo, boot_time
        self.send_discover, self.boot_hangs = send_discover, boot_hangs
        self.late_prompt = late_prompt  # a login prompt still in transit after power-off
        self.sysfs = sysfs  # False: no /sys/class/net (the MAC comes from `ip link` only)
        self.dhcp = dhcp or DhcpEvents()
        self.resets = 0  # factory defaults restored (through the web interface)
        self.check_syncs = 0
        self.outlet = ScriptedOutlet(self)
        self.powered = False
        self.boots = 0
        self.commands: list[str] = []
        self.typed: list[str] = []  # every line received, passwords included (test view)
        self._state = "off"
        self._user = ""
        self._line = ""
        self._after_cr = False
        self._lock = threading.RLock()
        self._generation = 0
        self._stop = threading.Event()
        self._reader = threading.Thread(target=self._read_loop, daemon=True,
                                        name="scripted-phone")
        self._reader.start()

    # --- the wire ------------------------------------------------------------------------
    def _out(self, text: str) -> None:
        data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode()
        try:
            os.write(self.fd_out, data)
        except OSError:
            pass

    def _read_loop(self) -> None:
        import select

        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 1024)
            except OSError:
                data = b""
            if not data:
                self.ended.set()
                return
            for ch in data.decode(errors="replace"):
                self._char(ch)

    def _char(self, ch: str) -> None:
        with self._lock:
            if self._state in ("off", "booting"):
                return
            if ch == "\n" and self._after_cr:  # CR LF ends one line, not two
                self._after_cr = False
                return
            self._after_cr = ch == "\r"
            if ch in "\r\n":
                if self.echo and self._state != "password":
                    self._out("\n")
                line, self._line = self._line, ""
                self._handle(line)
                return
            self._line += ch
            if self.echo and self._state != "password":
                self._out(ch)

    exit_ends_session = False

    def attach_shell(self, user: str) -> None:
        """Start at the shell prompt, as after an SSH login; ``exit`` ends the session."""
        with self._lock:
            self.powered, self._state, self._user = True, "shell", user
            self.exit_ends_session = True
        self._prompt()

    def attach_login(self) -> None:
        """Start at the login prompt, as a telnet session does; ``exit`` ends the session."""
        with self._lock:
            self.powered, self._state = True, "login"
            self.exit_ends_session = True
        self._out(f"{self.model} login: ")

    # --- what the web interface and SIP ask of the phone --------------------------------------
    def restart(self) -> None:
        """Restart as after ``reboot`` (the web interface's reboot.htm)."""
        self._out("Restarting system.\n")
        if self.exit_ends_session:  # the session dies with the phone: its boot shows on DHCP
            self.boots += 1
            self.ended.set()
            if self.send_discover:
                threading.Timer(self.boot_time, self.dhcp.record,
                                args=(self.mac, "DISCOVER")).start()
            return
        self._boot()

    def hang(self) -> None:
        """The console stops answering input (a phone busy before it restarts on its own)."""
        with self._lock:
            self._state = "booting"

    def reset_to_defaults(self) -> None:
        """Factory defaults, then a restart (the web interface's reset.htm ``CONFIG=2``)."""
        self.resets += 1
        self.restart()

    def check_sync(self) -> None:
        """SIP NOTIFY check-sync: DHCP and provisioning again, no reboot."""
        self.check_syncs += 1
        self._out("udhcpc: sending discover\n")
        if self.send_discover:
            self.dhcp.record(self.mac, "DISCOVER")

    # --- power and boot ------------------------------------------------------------------
    def power_on(self) -> None:
        with self._lock:
            if self.powered:
                return
            self.powered = True
        self._boot()

    def power_off(self) -> None:
        with self._lock:
            self.powered = False
            self._state = "off"
            self._generation += 1
        if self.late_prompt:  # delivered by the terminal server a moment after the cut
            threading.Timer(0.1, self._out, args=(f"\n{self.model} login: ",)).start()

    def _boot(self) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
            self._state = "booting"
            self.boots += 1
        threading.Thread(target=self._boot_sequence, args=(generation,), daemon=True).start()

    def _boot_sequence(self, generation: int) -> None:
        self._out(f"\nU-Boot 2016.01 (AudioCodes {self.model})\nStarting kernel ...\n"
                  f"Linux version 4.9.0 (build@audc)\n")
        if self._stop.wait(self.boot_time):
            return
        with self._lock:
            if generation != self._generation:
                return  # powered off meanwhile
        self._out("udhcpc: sending discover\n")
        if self.send_discover:
            self.dhcp.record(self.mac, "DISCOVER")
        if self.boot_hangs:
            self._out("Kernel panic - not syncing: VFS: Unable to mount root fs\n")
            return
        with self._lock:
            if generation != self._generation:
                return
            self._state = "login"
            self._out(f"\n{self.model} login: ")

    # --- the shell -----------------------------------------------------------------------
    def _prompt(self) -> None:
        if self.version.startswith("UC_"):
            self._out(f"[{self._user}@{self.model} /home/ipphone]# ")
        else:
            self._out(f"[{self._user}@{self.model} ~]$ ")

    def _handle(self, line: str) -> None:
        self.typed.append(line)
        if self._state == "login":
            if not line:
                self._out(f"{self.model} login: ")
                return
            self._user = line
            self._state = "password"
            self._out("Password: ")
        elif self._state == "password":
            if self._user == self.username and line == self.password:
                self._state = "shell"
                self._prompt()
            else:
                self._state = "login"
                self._out(f"Login incorrect\n{self.model} login: ")
        elif self._state == "shell":
            self._command(line.strip())

    def _command(self, command: str) -> None:
        self.commands.append(command)
        words = command.split()
        if not words:
            self._prompt()
        elif command == "cat /etc/release":
            self._out(f"HW_TYPE={self.model}\nBUILD_PROFILE=release\n"
                      f"SWVERSION={self.version}\n")
            self._prompt()
        elif command == "cat /sys/class/net/eth0/address":
            self._out(f"{self._mac_colon()}\n" if self.sysfs else
                      "cat: can't open '/sys/class/net/eth0/address': No such file or directory\n")
            self._prompt()
        elif command == "ip link show eth0":
            self._out("2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc pfifo_fast "
                      f"qlen 1000\n    link/ether {self._mac_colon()} brd ff:ff:ff:ff:ff:ff\n")
            self._prompt()
        elif words[0] == "echo":
            self._out(command.partition(" ")[2] + "\n")
            self._prompt()
        elif command == "reboot":
            self.restart()
        elif command == "exit":
            if self.exit_ends_session:
                self.ended.set()
                return
            self._state = "login"
            self._out(f"\n{self.model} login: ")
        else:
            self._out(f"-sh: {words[0]}: not found\n")
            self._prompt()

    def _mac_colon(self) -> str:
        mac = self.mac.replace(":", "").lower()
        return ":".join(mac[i:i + 2] for i in range(0, 12, 2))

    def close(self) -> None:
        self._stop.set()
        self._reader.join(2)
