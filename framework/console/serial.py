"""A serial console: local tty, ``socket://`` (raw TCP) or ``rfc2217://`` via pyserial.

``serial_for_url`` opens the port in the calling thread, so a terminal-server connection
lives in that thread's network namespace. Against ser2net use
``rfc2217://host:port?ign_set_control`` (LAB-NOTES.md: ser2net does not answer the
control-line requests pyserial would otherwise wait for).
"""

from __future__ import annotations

import serial

from framework.console.base import DEFAULT_PROMPT, ConsoleError, Pattern, StreamConsole
from framework.console.log import PhoneLog


class SerialConsole(StreamConsole):
    """``Console`` over pyserial; ``url`` is anything ``serial_for_url`` accepts."""

    channel = "serial"

    def __init__(self, name: str, log: PhoneLog, url: str, *, baudrate: int = 115200,
                 prompt: Pattern = DEFAULT_PROMPT, open_timeout: float = 5.0) -> None:
        super().__init__(name, log, prompt=prompt)
        self.url = url
        self.baudrate = baudrate
        self.open_timeout = open_timeout
        self._port: serial.SerialBase | None = None

    def _describe(self) -> str:
        return f"{self.url} at {self.baudrate} baud"

    def _open_stream(self) -> None:
        try:
            port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.05,
                                         do_not_open=True)
            if hasattr(port, "_network_timeout"):  # rfc2217: negotiation deadline
                port._network_timeout = self.open_timeout
            port.open()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ConsoleError(f"{self.name}: cannot open serial console {self.url}: "
                               f"{exc}") from None
        self._port = port

    def _read_stream(self) -> bytes:
        port = self._port
        if port is None or not port.is_open:
            raise EOFError("port closed")
        try:
            return bytes(port.read(max(1, port.in_waiting)))
        except serial.SerialException as exc:
            raise EOFError(str(exc)) from None
        except (TypeError, AttributeError) as exc:  # pyserial after close() from another thread
            raise EOFError(f"port closed ({exc})") from None

    def _write_stream(self, data: bytes) -> None:
        if self._port is None:
            raise ConsoleError(f"{self.name}: console is not open")
        try:
            self._port.write(data)
            self._port.flush()
        except serial.SerialException as exc:
            raise OSError(str(exc)) from None

    def _close_stream(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            port.close()
