"""DHCP clients for the tests: BusyBox udhcpc and ISC dhclient (clients we did not write),
plus a small scapy client for messages no real client sends on demand.

Each real client runs in a client namespace with a generated event script: the script
dumps the client's environment to a file per event and announces the event on a FIFO,
so the tests wait for events ("bound", "renew", "BOUND") instead of sleeping.
"""

from __future__ import annotations

import os
import select
import signal
import stat
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from framework.dhcp.options import OptionSet
from framework.dhcp.packet import (
    BROADCAST_IP,
    BROADCAST_MAC,
    CLIENT_PORT,
    SERVER_PORT,
    ZERO_IP,
    DhcpFrame,
    DhcpMessageError,
    build_frame,
    parse_frame,
)
from framework.dhcp.wire import open_l2, receive
from framework.netns import Netns, interface_mac

CLIENT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
#: The options the phones ask for and the lab sets (Admin Manual 10.2.2).
PROVISIONING_OPTIONS = (66, 67, 43, 160)

_SCRIPT = """#!/bin/sh
# udhcpc passes the event as $1, dhclient as $reason
ev="${{1:-$reason}}"
out="{dir}/$$.$ev.env"
env > "$out"
case "$ev" in
  bound|renew) ip addr replace "$ip/$mask" dev "$interface" ;;
  deconfig) ip -4 addr flush dev "$interface" ;;
  BOUND|RENEW|REBIND|REBOOT) ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;;
esac
echo "$ev $out" > "{fifo}"
"""


@dataclass(frozen=True)
class ClientEvent:
    """One event script run: its name (``bound``, ``BOUND``, ``nak`` ...) and environment."""

    name: str
    env: dict[str, str]


class ClientScript:
    """An event script plus the FIFO it reports on; :meth:`wait` is the event wait."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.fifo = workdir / "events.fifo"
        os.mkfifo(self.fifo)
        # O_RDWR keeps a writer open, so the script never blocks and we never see EOF.
        self._fd = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)
        self.path = workdir / "event.sh"
        self.path.write_text(_SCRIPT.format(dir=workdir, fifo=self.fifo))
        self.path.chmod(self.path.stat().st_mode | stat.S_IXUSR)
        self._buffer = b""
        self.seen: list[ClientEvent] = []

    def wait(self, names: Iterable[str], timeout: float) -> ClientEvent:
        """The next event whose name is in ``names``; TimeoutError naming them and what came."""
        wanted = set(names)
        deadline = time.monotonic() + timeout
        while True:
            while b"\n" in self._buffer:
                line, self._buffer = self._buffer.split(b"\n", 1)
                name, _, path = line.decode().partition(" ")
                env = _read_env(Path(path))
                event = ClientEvent(name, env)
                self.seen.append(event)
                if name in wanted:
                    return event
            left = deadline - time.monotonic()
            readable, _, _ = select.select([self._fd], [], [], max(left, 0.0))
            if readable:
                self._buffer += os.read(self._fd, 65536)
            elif left <= 0:
                got = ", ".join(e.name for e in self.seen) or "none"
                raise TimeoutError(f"no client event {sorted(wanted)} within {timeout:g} s (events seen: {got})")

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text(errors="surrogateescape").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            env[key] = value
    return env


class Udhcpc:
    """BusyBox udhcpc in a client namespace (what the 3.x phones run)."""

    def __init__(self, ns: Netns, workdir: Path, *, request: Sequence[int] = PROVISIONING_OPTIONS,
                 extra: Sequence[str] = ()) -> None:
        self.ns = ns
        self.workdir = workdir
        self.script = ClientScript(workdir)
        self.request = request
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self, *, tries: int, pause: int, once: bool) -> list[str]:
        argv = ["busybox", "udhcpc", "-i", "eth0", "-f", "-s", str(self.script.path),
                "-t", str(tries), "-T", str(pause), "-A", "1"]
        for code in self.request:
            argv += ["-O", str(code)]
        if once:
            argv += ["-q", "-n"]
        return argv + list(self.extra)

    def obtain(self, *, tries: int = 3, pause: int = 1, timeout: float = 10.0) -> ClientEvent | None:
        """Run until bound (then exit) or until it gives up; the ``bound`` event or None."""
        proc = self.ns.popen(self.argv(tries=tries, pause=pause, once=True), env={"PATH": CLIENT_PATH},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        bound = [e for e in self._drain() if e.name == "bound"]
        if code == 0:
            assert bound, "udhcpc exited 0 without a bound event"
            return bound[-1]
        return None

    def _drain(self) -> list[ClientEvent]:
        events: list[ClientEvent] = []
        while True:
            try:
                events.append(self.script.wait({"bound", "renew", "deconfig", "nak", "leasefail"}, 0.0))
            except TimeoutError:
                return events

    def start(self) -> None:
        """Run in the foreground until :meth:`stop` (for renewals: SIGUSR1)."""
        self.proc = self.ns.popen(self.argv(tries=5, pause=1, once=False), env={"PATH": CLIENT_PATH},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def renew(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGUSR1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # SIGTERM waits out udhcpc's 3 s pause after a NAK
            self.proc.wait(5)
        self.proc = None
        stop_namespace_processes(self.ns)
        self.script.close()


def stop_namespace_processes(ns: Netns) -> None:
    """SIGTERM, by pid, every process left in a client namespace this test created."""
    proc = subprocess.run(["ip", "netns", "pids", ns.name], capture_output=True, text=True)
    for pid in proc.stdout.split():
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass


_DHCLIENT_CONF = """# Redefine the provisioning options as raw strings so the lease file shows exact bytes
option hil-66 code 66 = string;
option hil-67 code 67 = string;
option hil-43 code 43 = string;
option hil-160 code 160 = string;
request subnet-mask, routers, domain-name-servers, domain-name, hil-66, hil-67, hil-43, hil-160;
"""


class Dhclient:
    """ISC dhclient in a client namespace, with its own config, lease file and event script."""

    def __init__(self, ns: Netns, workdir: Path) -> None:
        self.ns = ns
        self.workdir = workdir
        self.script = ClientScript(workdir)
        self.conf = workdir / "dhclient.conf"
        self.conf.write_text(_DHCLIENT_CONF)
        self.leases = workdir / "dhclient.leases"
        self.pidfile = workdir / "dhclient.pid"

    def obtain(self, timeout: float = 15.0) -> ClientEvent | None:
        """``dhclient -1``: returns when it has a lease (the parent exits after writing the
        lease file and leaving a daemon behind) or gave up; the BOUND/REBOOT event or None."""
        proc = self.ns.popen(
            ["dhclient", "-1", "-v", "-cf", str(self.conf), "-lf", str(self.leases),
             "-pf", str(self.pidfile), "-sf", str(self.script.path), "eth0"],
            env={"PATH": CLIENT_PATH}, stdout=(self.workdir / "dhclient.out").open("wb"),
            stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
        if code != 0:
            return None
        return self.script.wait({"BOUND", "REBOOT"}, timeout=0)

    def stop(self) -> None:
        """End the dhclient daemon (and anything else we started in this test namespace)."""
        stop_namespace_processes(self.ns)
        self.script.close()

    def lease_options(self) -> dict[str, bytes]:
        """The ``hil-*`` options (66, 67, 43, 160 as strings) of the last lease, as exact bytes."""
        text = self.leases.read_text()
        block = text[text.rindex("lease {"):]
        found: dict[str, bytes] = {}
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("option hil-") and line.endswith(";"):
                name, _, value = line[len("option "):-1].partition(" ")
                found[name] = parse_isc_value(value)
        return found


def parse_isc_value(value: str) -> bytes:
    """An ISC lease-file value: ``"text"`` (with ISC's escapes) or ``hh:hh:..`` hex bytes."""
    if value.startswith('"') and value.endswith('"'):
        body = value[1:-1]
        out = bytearray()
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body):
                nxt = body[i + 1]
                if nxt.isdigit():
                    out.append(int(body[i + 1:i + 4], 8))
                    i += 4
                    continue
                out += nxt.encode()
                i += 2
                continue
            out += ch.encode()
            i += 1
        return bytes(out)
    return bytes(int(part, 16) for part in value.split(":"))


class RawClient:
    """A scapy DHCP client in a client namespace: sends crafted messages, collects replies.

    For protocol corners no real client produces on demand (foreign server id, wrong
    requested address, INFORM, relayed requests); the headline tests use udhcpc/dhclient.
    """

    def __init__(self, ns: Netns) -> None:
        self.ns = ns
        with ns.entered():
            self.mac = interface_mac("eth0")
            self.sock = open_l2("eth0", f"udp and (dst port {CLIENT_PORT} or dst port {SERVER_PORT})")

    def send(self, xid: int, options: OptionSet, *, chaddr: str | None = None, ciaddr: str = ZERO_IP,
             giaddr: str = ZERO_IP, flags: int = 0x8000, src_ip: str = ZERO_IP,
             dst_ip: str = BROADCAST_IP, dst_mac: str = BROADCAST_MAC) -> None:
        frame = build_frame(
            src_mac=self.mac, dst_mac=dst_mac, src_ip=src_ip, dst_ip=dst_ip, sport=CLIENT_PORT,
            dport=SERVER_PORT, op=1, xid=xid, mac=chaddr or self.mac, options=options,
            flags=flags, ciaddr=ciaddr, giaddr=giaddr,
        )
        self.sock.send(frame)

    def replies(self, xid: int, timeout: float, *, first: bool = True) -> list[DhcpFrame]:
        """Replies (op 2) with ``xid``: the first as soon as it comes, or all within ``timeout``."""
        found: list[DhcpFrame] = []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            data = receive(self.sock, left)
            if data is None:
                continue
            try:
                frame = parse_frame(data)
            except DhcpMessageError:
                continue
            if frame.message.op == 2 and frame.message.xid == xid:
                found.append(frame)
                if first:
                    break
        return found

    def close(self) -> None:
        self.sock.close()


def send_frames(ns: Netns, frames: Sequence[bytes]) -> None:
    """Put raw Ethernet frames on ``eth0`` of ``ns`` (for the fuzz test)."""
    with ns.entered():
        sock = open_l2("eth0", "udp and dst port 9")  # send-only; the filter keeps it quiet
    try:
        for frame in frames:
            sock.outs.send(frame)
    finally:
        sock.close()


def icmp_unreachables_sent(ns: Netns) -> int:
    """``Icmp: OutDestUnreachs`` of a namespace (an unbound UDP port answers with one)."""
    text = ns.run(["cat", "/proc/net/snmp"], check=True).stdout
    rows = [line.split() for line in text.splitlines() if line.startswith("Icmp:")]
    header, values = rows[0], rows[1]
    return int(values[header.index("OutDestUnreachs")])
