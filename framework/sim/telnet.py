"""The virtual phone's telnet server (telnetlib3): the same login and shell as the serial
console, for phones whose setting ``management/telnet/enabled`` is ``1``.

A real 400HD opens telnet only when a configuration file turned it on (REAL-PHONE.md
"Control paths"); the phone starts this server on port 23 of its leased address, inside
its namespace, while that setting is ``1``, and stops it when a later configuration or
factory defaults turn it off, and on reboot or power loss (every connection ends).

Each connection shows ``<MODEL> login: `` and ``Password: ``, then the PhoneShell. The
server asks for character mode (WILL ECHO, WILL SGA, as BusyBox telnetd) and echoes like
the serial line; ``exit`` closes the connection. telnetlib3 is asyncio: one event loop
per listening phone runs in a thread started from the phone's namespace thread (so its
sockets live in that namespace); the session itself runs in an executor thread, because a
``reboot`` typed there stops this very server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable

import telnetlib3

from framework.sim.console import SerialSession, ShellTarget

log = logging.getLogger(__name__)
TELNET_PORT = 23
SETTING = "management/telnet/enabled"
START_TIMEOUT_S = 10.0
#: how long the server waits for a client's answers to its option negotiation
NEGOTIATION_S = 0.5


def telnet_enabled(settings: dict[str, str]) -> bool:
    """The phone's setting ``management/telnet/enabled`` (``1`` on; default off)."""
    return settings.get(SETTING, "0").strip() == "1"


class _Connection:
    """One telnet client: writes from any thread go through the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop,
                 writer: telnetlib3.TelnetWriter) -> None:
        self.loop = loop
        self.writer = writer
        self.closed = asyncio.Event()

    def transmit(self, data: bytes) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._write, data)

    def _write(self, data: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(data)

    def close(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._close)

    def _close(self) -> None:
        self.writer.close()
        self.closed.set()


class PhoneTelnetServer:
    """Listener + sessions for one phone; ``start`` in the phone's namespace thread."""

    def __init__(self, phone: ShellTarget, username: str, password: Callable[[], str]) -> None:
        self.phone = phone
        self.username = username
        self.password = password
        self.lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self.address: str | None = None
        self.port: int | None = None   # the bound port (tests may start on port 0)
        self.dead = False   # fault knob (console-dead): the daemon is gone, nothing listens

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self, address: str, port: int = TELNET_PORT) -> None:
        """Listen on ``address:port``; returns once listening (OSError if it cannot)."""
        self.stop()
        if self.dead:
            return
        loop = asyncio.new_event_loop()
        ready: concurrent.futures.Future[int] = concurrent.futures.Future()
        stopped = threading.Event()
        thread = threading.Thread(target=self._run, args=(loop, address, port, ready, stopped),
                                  daemon=True, name=f"telnet-{address}")
        thread.start()
        bound = ready.result(timeout=START_TIMEOUT_S)
        with self.lock:
            self._loop, self._stopped, self._thread = loop, stopped, thread
            self.address, self.port = address, bound
        log.info("telnet server listening on %s:%d", address, bound)

    def stop(self) -> None:
        """Close the listener and every connection (setting off, reboot, power loss)."""
        with self.lock:
            loop, self._loop = self._loop, None
            stopped, self._stopped = self._stopped, None
            thread, self._thread = self._thread, None
            self.address = self.port = None
        if loop is None or stopped is None:
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        if thread is not threading.current_thread():
            stopped.wait(START_TIMEOUT_S)   # the listener is closed: the port is free again

    def _run(self, loop: asyncio.AbstractEventLoop, address: str, port: int,
             ready: concurrent.futures.Future[int], stopped: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        connections: set[_Connection] = set()

        async def shell(reader: telnetlib3.TelnetReader, writer: telnetlib3.TelnetWriter) -> None:
            await self._session(loop, reader, writer, connections)

        try:
            server = loop.run_until_complete(telnetlib3.create_server(
                address, port, shell=shell, encoding=False, timeout=False,
                connect_maxwait=NEGOTIATION_S))
        except OSError as exc:
            ready.set_exception(exc)
            loop.close()
            stopped.set()
            return
        sockets = server.sockets or ()
        ready.set_result(sockets[0].getsockname()[1] if sockets else port)
        try:
            loop.run_forever()
        finally:
            server.close()
            for connection in list(connections):
                connection.writer.close()
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()
            stopped.set()

    async def _session(self, loop: asyncio.AbstractEventLoop, reader: telnetlib3.TelnetReader,
                       writer: telnetlib3.TelnetWriter, connections: set[_Connection]) -> None:
        connection = _Connection(loop, writer)
        connections.add(connection)
        session = SerialSession(connection, self.phone, self.username, self.password,
                                on_logout=connection.close)
        try:
            session.login_prompt()
            while not connection.closed.is_set():
                data = await reader.read(1024)
                if not data:
                    return
                # The shell may reboot the phone, which stops this loop: not on its thread.
                await loop.run_in_executor(None, session.feed, bytes(data))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            connections.discard(connection)
            writer.close()
