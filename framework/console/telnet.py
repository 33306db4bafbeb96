"""A telnet console (telnetlib3): the phone's BusyBox telnetd behind the ``Console`` protocol.

A 400HD serves telnet only while its setting ``management/telnet/enabled`` is 1
(REAL-PHONE.md, "Control paths"); it shows ``<MODEL> login: `` and ``Password: `` like
the serial console, then the same shell. Like an SSH session, the connection dies when
the phone restarts.

telnetlib3 is asyncio: its event loop runs in a thread of this console, started from
``open()``; a thread inherits its creator's network namespace, so the TCP connection is
made in the namespace of the thread that opens the console. A pump task moves received
bytes (telnet commands already taken out) into a queue that ``_read_stream`` drains, so
no byte is lost to a read timing out (telnetlib3's blocking wrapper cancels reads on
timeout).
"""

from __future__ import annotations

import asyncio
import queue
import re
import threading
from typing import Any

import telnetlib3

from framework.console.base import DEFAULT_PROMPT, ConsoleError, Pattern, StreamConsole
from framework.console.log import PhoneLog

#: a lone LF (not after CR): telnet's end of line is CR LF (RFC 854, the NVT)
_LONE_LF = re.compile(rb"(?<!\r)\n")


class TelnetConsole(StreamConsole):
    """``Console`` over telnet; login happens at the prompts, as on a serial line."""

    channel = "telnet"

    def __init__(self, name: str, log: PhoneLog, host: str, port: int = 23, *,
                 prompt: Pattern = DEFAULT_PROMPT, connect_timeout: float = 10.0) -> None:
        super().__init__(name, log, prompt=prompt)
        self.host, self.port = host, port
        self.connect_timeout = connect_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._writer: Any = None
        self._received_q: queue.Queue[bytes | BaseException] = queue.Queue()
        self._ended: BaseException | None = None

    def __repr__(self) -> str:
        return f"TelnetConsole({self.name!r}, {self.host}:{self.port})"

    def _describe(self) -> str:
        return f"telnet://{self.host}:{self.port}"

    def _open_stream(self) -> None:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"{self.name} telnet",
                                  daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        self._received_q = queue.Queue()
        self._ended = None
        future = asyncio.run_coroutine_threadsafe(self._connect(), loop)
        try:
            future.result(self.connect_timeout + 5)
        except BaseException as exc:
            future.cancel()
            self._stop_loop()
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise ConsoleError(f"{self.name}: cannot open telnet console {self.host}:"
                               f"{self.port}: {reason}") from None

    async def _connect(self) -> None:
        reader, writer = await telnetlib3.open_connection(
            self.host, self.port, encoding=False, connect_timeout=self.connect_timeout,
            connect_maxwait=1.0, term="dumb", cols=200, rows=50,
            client_factory=telnetlib3.TelnetClient)
        self._writer = writer
        asyncio.get_running_loop().create_task(self._pump(reader))

    async def _pump(self, reader: Any) -> None:
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    self._received_q.put(EOFError("remote closed the connection"))
                    return
                self._received_q.put(bytes(data))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a reset connection, a protocol error: end the stream
            self._received_q.put(EOFError(str(exc) or type(exc).__name__))

    def _read_stream(self) -> bytes:
        if self._ended is not None:
            raise EOFError(str(self._ended))
        try:
            item = self._received_q.get(timeout=0.05)
        except queue.Empty:
            return b""
        if isinstance(item, BaseException):
            self._ended = item
            raise EOFError(str(item))
        return item

    def _write_stream(self, data: bytes) -> None:
        loop, writer = self._loop, self._writer
        if loop is None or writer is None or loop.is_closed():
            raise ConsoleError(f"{self.name}: console is not open")
        if self._ended is not None or writer.is_closing():
            raise OSError(f"connection ended ({self._ended or 'closed'})")
        loop.call_soon_threadsafe(writer.write, _LONE_LF.sub(b"\r\n", data))

    def _close_stream(self) -> None:
        loop, writer = self._loop, self._writer
        self._writer = None
        if loop is not None and writer is not None and loop.is_running():
            loop.call_soon_threadsafe(writer.close)
        self._received_q.put(EOFError("closed"))
        self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None:
            return
        if loop.is_running():
            async def _cancel_all() -> None:
                for task in asyncio.all_tasks():
                    if task is not asyncio.current_task():
                        task.cancel()
            try:
                asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(2)
            except Exception:  # the loop is going away anyway
                pass
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(2)
        if not loop.is_running():
            loop.close()
