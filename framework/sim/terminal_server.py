"""The simulated terminal server: every phone's serial line on TCP, as ser2net serves it.

Phone *i* (1-based, rig order; docs/CONTRACTS.md) is served on the terminal server
address in the infra namespace at raw TCP port 7000+i (pyserial ``socket://``) and at
RFC 2217 port 7100+i (pyserial ``rfc2217://``; the server side is pyserial's
``serial.rfc2217.PortManager``, the same code ``rfc2217_server.py`` uses). The listener
belongs to the terminal server, not to the phone, so a console connection survives
phone reboots and power cycles, as on a real bench. Several clients may attach to one
line at once; all see the phone's output.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from serial.rfc2217 import PortManager

from framework.netns import Netns
from framework.sim.console import SerialLine

log = logging.getLogger(__name__)


@dataclass
class _Client:
    sock: socket.socket
    line: SerialLine
    rfc2217: PortManager | None = None
    send_lock: threading.Lock = field(default_factory=threading.Lock)

    def write(self, data: bytes) -> None:
        """Raw bytes to the TCP peer (also PortManager's ``connection.write``)."""
        with self.send_lock:
            try:
                self.sock.sendall(data)
            except OSError:
                pass  # the reader loop notices the closed peer and drops it

    def from_phone(self, data: bytes) -> None:
        if self.rfc2217 is not None:
            data = b"".join(self.rfc2217.escape(data))
        self.write(data)


class TerminalServer:
    """Listens on raw and RFC 2217 ports for every line; one selector thread serves all."""

    def __init__(self, netns: Netns, address: str,
                 lines: Iterable[tuple[SerialLine, int, int]]) -> None:
        """``lines``: (serial line, raw port, RFC 2217 port) per phone."""
        self.netns = netns
        self.address = address
        self.lines = list(lines)
        self.selector = selectors.DefaultSelector()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.clients: list[_Client] = []
        self._wake_r, self._wake_w = socket.socketpair()

    def start(self) -> None:
        with self.netns.entered():
            for line, raw_port, rfc_port in self.lines:
                for port, kind in ((raw_port, "raw"), (rfc_port, "rfc2217")):
                    listener = socket.create_server((self.address, port), backlog=8)
                    listener.setblocking(False)
                    self.selector.register(listener, selectors.EVENT_READ, (kind, line))
        self.selector.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self.thread = threading.Thread(target=self._serve, name="terminal-server", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._wake_w.send(b"x")
        if self.thread is not None:
            self.thread.join(timeout=5)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()
        self._wake_w.close()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            for key, _ in self.selector.select():
                kind, target = key.data
                if kind == "wake":
                    continue
                if kind in ("raw", "rfc2217"):
                    self._accept(key.fileobj, kind, target)  # type: ignore[arg-type]
                else:
                    self._read(target)

    def _accept(self, listener: socket.socket, kind: str, line: SerialLine) -> None:
        try:
            sock, peer = listener.accept()
        except BlockingIOError:
            return
        sock.setblocking(True)
        sock.settimeout(5.0)  # a client that stops reading must not stall the phone
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = _Client(sock, line)
        if kind == "rfc2217":
            client.rfc2217 = PortManager(line, client)
        log.info("console %s: %s client %s:%d attached", line.name, kind, *peer)
        self.clients.append(client)
        line.attach(client.from_phone)
        self.selector.register(sock, selectors.EVENT_READ, ("client", client))

    def _read(self, client: _Client) -> None:
        try:
            data = client.sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            client.line.detach(client.from_phone)
            self.selector.unregister(client.sock)
            client.sock.close()
            self.clients.remove(client)
            return
        if client.rfc2217 is not None:
            data = b"".join(client.rfc2217.filter(data))
        if data:
            client.line.receive(data)
