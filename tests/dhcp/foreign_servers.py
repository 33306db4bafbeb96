"""Real foreign DHCP servers for the rogue-server tests: busybox udhcpd and dnsmasq, each
with its defaults (udhcpd ARP-checks an address for 2 s before offering it, dnsmasq pings
it first), started in a namespace of the test's network.

Each is a context manager; ``__enter__`` returns once the server says on its console that
it serves (the readiness event, bounded), ``__exit__`` stops it.
"""

from __future__ import annotations

import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from framework.netns import Netns

READY_TIMEOUT_S = 15.0


class ForeignServer:
    """A DHCP server process in ``ns`` on ``eth0`` at ``address``; its console is kept."""

    name = "server"
    ready_marker = ""

    def __init__(self, ns: Netns, address: str, pool: tuple[str, str], workdir: Path) -> None:
        self.ns = ns
        self.address = address
        self.pool = pool
        self.workdir = workdir
        self.proc: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str] = queue.Queue()
        self.console: list[str] = []

    def argv(self) -> list[str]:
        raise NotImplementedError

    def __enter__(self) -> ForeignServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ns.ip("addr", "add", f"{self.address}/24", "dev", "eth0")
        self.proc = self.ns.popen(self.argv(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.__exit__()
                raise TimeoutError(f"{self.name} did not say {self.ready_marker!r} within "
                                   f"{READY_TIMEOUT_S} s: {self.console}") from None
            if self.ready_marker in line:
                return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.console.append(line.rstrip())
            self.lines.put(line)

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.ns.ip("addr", "del", f"{self.address}/24", "dev", "eth0", check=False)


class Udhcpd(ForeignServer):
    """busybox udhcpd with its defaults (no ``-a``: the 2000 ms ARP check stays on)."""

    name = "busybox udhcpd"
    ready_marker = "started"

    def argv(self) -> list[str]:
        conf = self.workdir / "udhcpd.conf"
        conf.write_text(f"start {self.pool[0]}\nend {self.pool[1]}\ninterface eth0\n"
                        f"lease_file {self.workdir / 'udhcpd.leases'}\n"
                        f"pidfile {self.workdir / 'udhcpd.pid'}\n"
                        f"option subnet 255.255.255.0\noption lease 600\n"
                        f"opt tftp rogue.example\n")
        (self.workdir / "udhcpd.leases").touch()
        return ["busybox", "udhcpd", "-f", str(conf)]


class Dnsmasq(ForeignServer):
    """dnsmasq with its DHCP defaults (it pings an address before offering it); DNS off
    (``--port=0``) so it does not compete for port 53 with anything."""

    name = "dnsmasq"
    ready_marker = "DHCP, IP range"

    def argv(self) -> list[str]:
        return ["dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--interface=eth0",
                "--bind-interfaces", "--port=0", "--log-facility=-", "--log-dhcp",
                f"--dhcp-range={self.pool[0]},{self.pool[1]},255.255.255.0,10m",
                f"--dhcp-leasefile={self.workdir / 'dnsmasq.leases'}",
                f"--pid-file={self.workdir / 'dnsmasq.pid'}", "--user=root",
                "--dhcp-option=66,rogue.example"]


def have(binary: str) -> bool:
    return shutil.which(binary) is not None
