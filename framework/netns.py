"""Linux network namespaces: build test networks and run code inside them.

Python 3.11 has no ``os.setns``; ``setns(2)`` through ctypes switches only the calling
thread, and sockets, threads and child processes created from that thread stay in the
namespace (LAB-NOTES.md). Everything here keeps traffic inside namespaces we created:
the 192.0.2.0/24 documentation range, nothing routed to the host.

Usage::

    with TestNetwork("hilt", clients=2) as net:       # hilt-lab + hilt-c1, hilt-c2
        with net.lab.entered():                       # this thread is now in hilt-lab
            sock = socket.socket(...)                 # lives in hilt-lab for good
        net.client(0).run(["udhcpc", "-i", "eth0", ...])
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from framework.errors import HilError

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
T = TypeVar("T")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class NamespaceError(HilError, RuntimeError):
    """A namespace operation failed; the message says which and why."""


def have_privileges() -> tuple[bool, str]:
    """Return (ok, reason): whether this process may create network namespaces."""
    if os.geteuid() != 0:
        return False, (
            "creating network namespaces needs root (run with sudo), or CAP_SYS_ADMIN and "
            "CAP_NET_ADMIN in a user namespace where the kernel allows it "
            "(unshare --user --map-root-user --net)"
        )
    if not os.path.isdir("/proc/self/ns") or not os.path.exists("/proc/self/ns/net"):
        return False, "this kernel exposes no /proc/self/ns/net: network namespaces unavailable"
    return True, ""


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace open as ``fd``.

    Public for the few places that must own a thread of their own in a namespace (the SNMP
    client's event loop); most callers want :meth:`Netns.entered` or :meth:`Netns.thread`.
    """
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NamespaceError(f"setns failed: {os.strerror(err)}")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NamespaceError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")
    return proc


def list_namespaces() -> list[str]:
    """Names of the named network namespaces (``ip netns list``)."""
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


@dataclass
class Netns:
    """A named network namespace (``/run/netns/NAME``)."""

    name: str

    @property
    def path(self) -> str:
        return os.path.join(NETNS_DIR, self.name)

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def create(self) -> Netns:
        if not self.exists():
            _ip("netns", "add", self.name)
        _ip("-n", self.name, "link", "set", "lo", "up")
        return self

    def delete(self) -> None:
        if self.exists():
            _ip("netns", "del", self.name, check=False)

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Switch the calling thread into this namespace; switch back on exit.

        Sockets created inside stay in this namespace after the block ends.
        """
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError as exc:
            os.close(own)
            raise NamespaceError(f"network namespace {self.name!r} does not exist") from exc
        try:
            setns(target)
            try:
                yield
            finally:
                setns(own)
        finally:
            os.close(target)
            os.close(own)

    def enter_for_good(self) -> None:
        """Move the calling thread into the namespace without returning (thread bodies)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError as exc:
            raise NamespaceError(f"network namespace {self.name!r} does not exist") from exc
        try:
            setns(fd)
        finally:
            os.close(fd)

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` in this namespace in the calling thread and return its result."""
        with self.entered():
            return fn(*args, **kwargs)

    def thread(self, target: Callable[..., Any], *args: Any, name: str | None = None,
               daemon: bool = True) -> threading.Thread:
        """A thread whose body runs inside this namespace (not started)."""

        def body() -> None:
            self.enter_for_good()
            target(*args)

        return threading.Thread(target=body, name=name or f"{self.name}-thread", daemon=daemon)

    def run(self, argv: Sequence[str], *, timeout: float = 30.0, check: bool = False,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command in this namespace (``ip netns exec``) and capture its output."""
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True,
                              text=True, timeout=timeout, check=check, input=input)

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a command in this namespace (``ip netns exec``)."""
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kwargs)

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return _ip("-n", self.name, *args, check=check)


SIOCGIFHWADDR = 0x8927


def interface_mac(ifname: str) -> str:
    """MAC of an interface in the calling thread's namespace, as ``aa:bb:cc:dd:ee:ff``.

    Uses ioctl, not scapy's per-process cache (which returns the host's MAC in a
    setns'd thread).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            info = fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, struct.pack("256s", ifname.encode()[:15]))
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                raise NamespaceError(f"no interface {ifname!r} in this namespace") from exc
            raise
    return ":".join(f"{b:02x}" for b in info[18:24])


@dataclass
class TestNetwork:
    """A lab namespace with a bridge and N client namespaces, each linked by a veth.

    The lab side is ``PREFIX-lab`` with bridge ``br0`` at ``192.0.2.1/24``; client *i*
    (from 0) is ``PREFIX-cI`` with ``eth0`` and the MAC given (or a locally administered
    one). Clients get no address: they are for DHCP clients. Torn down on exit.
    """

    __test__ = False  # not a pytest test class

    prefix: str
    clients: int = 1
    lab_address: str = "192.0.2.1/24"
    macs: Sequence[str] = ()
    lab: Netns = field(init=False)
    client_ns: list[Netns] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.lab = Netns(f"{self.prefix}-lab")

    def client(self, i: int) -> Netns:
        return self.client_ns[i]

    def client_mac(self, i: int) -> str:
        if i < len(self.macs):
            return self.macs[i].lower()
        return f"02:00:00:00:{(i >> 8) & 0xFF:02x}:{i & 0xFF:02x}"

    def up(self) -> TestNetwork:
        ok, why = have_privileges()
        if not ok:
            raise NamespaceError(why)
        self.down()
        try:
            self.lab.create()
            self.lab.ip("link", "add", "br0", "type", "bridge")
            self.lab.ip("addr", "add", self.lab_address, "dev", "br0")
            self.lab.ip("link", "set", "br0", "up")
            for i in range(self.clients):
                ns = Netns(f"{self.prefix}-c{i}").create()
                self.client_ns.append(ns)
                peer = f"v{i}"
                _ip("link", "add", "eth0", "netns", ns.name, "address", self.client_mac(i),
                    "type", "veth", "peer", "name", peer, "netns", self.lab.name)
                self.lab.ip("link", "set", peer, "master", "br0")
                self.lab.ip("link", "set", peer, "up")
                ns.ip("link", "set", "eth0", "up")
        except Exception:
            self.down()
            raise
        return self

    def down(self) -> None:
        for name in list_namespaces():
            if name == self.lab.name or name.startswith(f"{self.prefix}-c"):
                Netns(name).delete()
        self.client_ns.clear()

    def __enter__(self) -> TestNetwork:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()
