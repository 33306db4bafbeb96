"""Layer-2 sockets for DHCP, opened the way LAB-NOTES.md found to work in namespaces.

scapy's ``L2Socket`` with ``promisc=False`` (promisc fails with ENODEV in a namespace),
a larger receive buffer for bursts, and ``select()`` around every receive so no thread
blocks forever. Call these from a thread that is already inside the target namespace:
the socket stays in the namespace it was created in.
"""

from __future__ import annotations

import os
import select
import socket

from scapy.arch.linux import L2ListenSocket, L2Socket

RECEIVE_BUFFER = 4 * 1024 * 1024  # absorb bursts (32 phones booting, the fuzz test)
DHCP_FILTER = "udp and (port 67 or port 68)"


def open_l2(interface: str, bpf: str, *, outgoing: bool = False) -> L2Socket:
    """A packet socket on ``interface`` with a BPF filter; ``outgoing`` also captures what
    other processes on this host send (used to sniff Kea's replies)."""
    cls = L2ListenSocket if outgoing else L2Socket
    sock = cls(iface=interface, filter=bpf, promisc=False)
    sock.ins.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    return sock


def receive(sock: L2Socket, timeout: float) -> bytes | None:
    """One frame, or None when nothing came within ``timeout`` (or it was our own frame)."""
    readable, _, _ = select.select([sock.ins.fileno()], [], [], max(0.0, timeout))
    if not readable:
        return None
    _, data, _ = sock.recv_raw()
    return data or None


class Wakeup:
    """A pipe a serving thread's ``select()`` also waits on, so ``stop()`` ends it at once
    instead of at the loop's next timeout (both backends' threads use one)."""

    def __init__(self) -> None:
        self._r, self._w = os.pipe()

    def fileno(self) -> int:
        return self._r

    def set(self) -> None:
        try:
            os.write(self._w, b"x")
        except OSError:
            pass

    def drain(self) -> None:
        os.read(self._r, 64)

    def close(self) -> None:
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
