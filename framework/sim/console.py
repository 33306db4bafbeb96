"""The virtual phone's console: its serial line, the login, and the Linux-like shell.

The 400HD's management console is a BusyBox Linux shell (REAL-PHONE.md "The shell",
docs/CONTRACTS.md "The virtual phone, as seen from outside"), the same on serial, SSH and
telnet: prompt ``[admin@440HD ~]$ `` (``#`` on UC firmware), ``cat /etc/release``,
``cat /sys/class/net/eth0/address``, ``ip link show eth0``, ``id``, ``uname -a``,
``echo``, ``reboot``, ``exit``/``logout``. There are no vendor commands: settings change
through configuration files, the web interface or SIP, as on a real phone. The serial line
belongs to the terminal server (it outlives phone reboots); the phone attaches its login
session to it at each boot.
"""

from __future__ import annotations

import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

Listener = Callable[[bytes], None]


class SerialLine:
    """One phone's UART as wired to the terminal server: phone output fans out to every
    attached TCP client; client input goes to whatever the phone runs on the line.

    It also carries the line settings an RFC 2217 client may set or read
    (``serial.rfc2217.PortManager`` expects a pyserial-like port).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: list[Listener] = []
        self._receiver: Listener | None = None
        self._lock = threading.Lock()
        # Fault knob (``hil sim fault console-dead``): a dead UART carries nothing either way.
        self.dead = False
        # RFC 2217 line state (pyserial attribute names).
        self.baudrate = 115200
        self.bytesize = 8
        self.parity = "N"
        self.stopbits = 1
        self.xonxoff = False
        self.rtscts = False
        self.break_condition = False
        self.dtr = True
        self.rts = True
        self.cts = True
        self.dsr = True
        self.ri = False
        self.cd = True

    def attach(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def detach(self, listener: Listener) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def connect_phone(self, receiver: Listener | None) -> None:
        """What reads the line on the phone side (None: nothing reads, input is lost)."""
        with self._lock:
            self._receiver = receiver

    def transmit(self, data: bytes) -> None:
        """Phone -> line: every attached client gets the bytes (nobody listening: lost)."""
        with self._lock:
            listeners = [] if self.dead else list(self._listeners)
        for listener in listeners:
            listener(data)

    def receive(self, data: bytes) -> None:
        """Line -> phone."""
        with self._lock:
            receiver = None if self.dead else self._receiver
        if receiver is not None:
            receiver(data)

    def reset_input_buffer(self) -> None:
        """RFC 2217 PURGE: nothing is buffered on the simulated line."""

    def reset_output_buffer(self) -> None:
        """RFC 2217 PURGE: nothing is buffered on the simulated line."""


class ShellTarget(Protocol):
    """What the shell drives on the phone."""

    model: str
    mac: str

    @property
    def version(self) -> str: ...

    def reboot(self) -> None: ...


class Transmitter(Protocol):
    """Where a login session writes: the serial line, or one telnet connection."""

    def transmit(self, data: bytes) -> None: ...


@dataclass(frozen=True)
class CommandResult:
    """A command's output and exit status; ``then`` runs after the output is delivered."""

    output: str
    status: int = 0
    then: Callable[[], None] | None = None
    logout: bool = False
    restarts: bool = False     # the phone goes down: no prompt follows


class PhoneShell:
    """The 400HD shell commands (docs/CONTRACTS.md), shared by serial, SSH and telnet."""

    def __init__(self, phone: ShellTarget, user: str) -> None:
        self.phone = phone
        self.user = user

    @property
    def prompt(self) -> str:
        own = getattr(getattr(self.phone, "sim", None), "prompt", None)  # sim.phones.<n>.prompt
        if isinstance(own, str):
            return own.format(user=self.user, model=self.phone.model)
        if self.phone.version.startswith("UC_"):  # UC 3.4.x (a real C450HD on 3.4.6)
            return f"[{self.user}@{self.phone.model} /home/ipphone]# "
        return f"[{self.user}@{self.phone.model} ~]$ "

    def run(self, line: str) -> CommandResult:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            return CommandResult(f"-sh: syntax error: {exc}\n", 2)
        if not words:
            return CommandResult("")
        command, args = words[0], words[1:]
        phone = self.phone
        release = getattr(getattr(phone, "sim", None), "release", None)
        if command == "cat" and args == ["/etc/release"] and isinstance(release, str):
            return CommandResult(release.format(model=phone.model, version=phone.version))
        if command == "cat" and args == ["/etc/release"]:  # as real dumps: no MAC= line
            return CommandResult(f"HW_TYPE={phone.model}\nBUILD_PROFILE=release\n"
                                 f"SWVERSION={phone.version}\n")
        mac = ":".join(phone.mac[i:i + 2] for i in range(0, 12, 2)).lower()
        if command == "cat" and args == ["/sys/class/net/eth0/address"]:
            return CommandResult(f"{mac}\n")
        if command == "ip" and args in (["link", "show", "eth0"], ["link", "show", "dev", "eth0"]):
            return CommandResult("2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc "
                                 f"pfifo_fast qlen 1000\n    link/ether {mac} brd "
                                 "ff:ff:ff:ff:ff:ff\n")
        if command == "cat":
            return CommandResult(f"cat: {' '.join(args) or '-'}: No such file or directory\n", 1)
        if command == "reboot":
            return CommandResult("Restarting system.\n", then=phone.reboot, restarts=True)
        if command in ("exit", "logout"):
            return CommandResult("", logout=True)
        if command == "id":   # the shell user is root-equivalent (uid=0(admin), UC 3.4.6)
            return CommandResult(f"uid=0({self.user}) gid=0(root) groups=0(root)\n")
        if command == "uname":
            if args in ([], ["-s"]):
                return CommandResult("Linux\n")
            if args == ["-a"]:
                return CommandResult(f"Linux {phone.model} 2.6.32 #1 PREEMPT armv5tejl "
                                     "GNU/Linux\n")
            return CommandResult(f"uname: invalid option -- {' '.join(args)}\n", 1)
        if command == "echo":
            return CommandResult(" ".join(args) + "\n")
        if command == "help":
            return CommandResult("Built-in commands:\n\tcat echo exit help id ip logout reboot "
                                 "uname\n")
        return CommandResult(f"-sh: {command}: not found\n", 127)


class SerialSession:
    """The login and shell on the serial line for one boot of the phone (line discipline
    of a tty: echo, CR/LF line ends, backspace; no echo of the password). A telnet
    connection runs the same session on its socket; ``on_logout`` then ends the
    connection instead of showing the login prompt again."""

    def __init__(self, line: Transmitter, phone: ShellTarget, username: str,
                 password: Callable[[], str],
                 on_logout: Callable[[], None] | None = None) -> None:
        self.line = line
        self.on_logout = on_logout
        self.phone = phone
        self.username = username
        self.password = password
        self.state = "booting"   # booting -> login -> password -> shell
        self.buffer = bytearray()
        self.user = ""
        self.shell: PhoneShell | None = None
        self.last_was_cr = False
        self.lock = threading.Lock()

    def write(self, text: str) -> None:
        self.line.transmit(text.replace("\r\n", "\n").replace("\n", "\r\n").encode())

    def login_prompt(self) -> None:
        with self.lock:
            if self.state == "booting":
                self.state = "login"
                self.write(f"\n{self.phone.model} login: ")

    def feed(self, data: bytes) -> None:
        """Bytes typed on the line."""
        actions: list[Callable[[], None]] = []
        with self.lock:
            for byte in data:
                char = bytes([byte])
                if self.state == "booting":
                    continue
                if char in (b"\r", b"\n"):
                    if char == b"\n" and self.last_was_cr:
                        self.last_was_cr = False
                        continue
                    self.last_was_cr = char == b"\r"
                    if self.state != "password":
                        self.write("\n")
                    text = self.buffer.decode("utf-8", "replace")
                    self.buffer.clear()
                    action = self._line(text)
                    if action is not None:
                        actions.append(action)
                    continue
                self.last_was_cr = False
                if char in (b"\x7f", b"\x08"):
                    if self.buffer:
                        self.buffer = self.buffer[:-1]
                        if self.state != "password":
                            self.line.transmit(b"\x08 \x08")
                    continue
                if byte == 3:  # ^C
                    self.buffer.clear()
                    self.write("^C\n" + self._prompt())
                    continue
                if byte < 32:
                    continue
                self.buffer += char
                if self.state != "password":
                    self.line.transmit(char)
        for action in actions:
            action()

    def _prompt(self) -> str:
        if self.state == "shell" and self.shell is not None:
            return self.shell.prompt
        if self.state == "password":
            return "Password: "
        return f"{self.phone.model} login: "

    def _line(self, text: str) -> Callable[[], None] | None:
        if self.state == "login":
            if text.strip():
                self.user = text.strip()
                self.state = "password"
            self.write(self._prompt())
            return None
        if self.state == "password":
            self.write("\n")
            if self.user == self.username and text == self.password():
                self.state = "shell"
                self.shell = PhoneShell(self.phone, self.user)
            else:
                self.state = "login"
                self.write("Login incorrect\n")
            self.write(self._prompt())
            return None
        assert self.shell is not None
        result = self.shell.run(text)
        self.write(result.output)
        if result.logout:
            self.state = "login"
            self.shell = None
            if self.on_logout is not None:
                return self.on_logout
        if not result.restarts:
            self.write(self._prompt())
        return result.then
