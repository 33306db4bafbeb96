"""The virtual phone's SSH server (paramiko): the same shell as the serial console.

It listens on the phone's leased address, port 22, inside the phone's namespace, only
while the phone is up; a reboot or power loss closes the listener and every session, as
on a real phone. Password authentication with the rig's credentials; ``exec`` runs one
shell command, ``shell`` gives the interactive prompt. Output of an ``exec`` is written
after ``accept()``, not from the paramiko callback (LAB-NOTES).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

import paramiko
from paramiko.common import (
    AUTH_FAILED,
    AUTH_SUCCESSFUL,
    OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED,
    OPEN_SUCCEEDED,
)

from framework.sim.console import PhoneShell, ShellTarget

log = logging.getLogger(__name__)
AUTH_TIMEOUT_S = 10.0


class _SessionPolicy(paramiko.ServerInterface):
    """paramiko's server callbacks: password auth, one session channel, exec or shell."""

    def __init__(self, username: str, password: Callable[[], str]) -> None:
        self.username = username
        self.password = password
        self.requests: dict[int, str | None] = {}   # channel id -> command (None: shell)
        self.requested = threading.Condition()

    def wait_request(self, channel: paramiko.Channel, timeout: float) -> tuple[bool, str | None]:
        """(True, command or None for a shell) once the client asked for exec or shell."""
        key = channel.get_id()
        with self.requested:
            if not self.requested.wait_for(lambda: key in self.requests, timeout):
                return False, None
            return True, self.requests.pop(key)

    def _request(self, channel: paramiko.Channel, command: str | None) -> bool:
        with self.requested:
            self.requests[channel.get_id()] = command
            self.requested.notify_all()
        return True

    def get_allowed_auths(self, username: str) -> str:
        return "password"

    def check_auth_password(self, username: str, password: str) -> int:
        if username == self.username and password == self.password():
            return AUTH_SUCCESSFUL
        return AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return OPEN_SUCCEEDED
        return OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        return self._request(channel, command.decode("utf-8", "replace"))

    def check_channel_shell_request(self, channel: paramiko.Channel) -> bool:
        return self._request(channel, None)

    def check_channel_pty_request(self, channel: paramiko.Channel, term: bytes, width: int,
                                  height: int, pixelwidth: int, pixelheight: int,
                                  modes: bytes) -> bool:
        return True


class PhoneSshServer:
    """Listener + sessions for one phone; ``start`` in the phone's namespace thread."""

    def __init__(self, phone: ShellTarget, username: str, password: Callable[[], str],
                 host_key: paramiko.PKey) -> None:
        self.phone = phone
        self.username = username
        self.password = password
        self.host_key = host_key
        self.listener: socket.socket | None = None
        self.transports: list[paramiko.Transport] = []
        self.lock = threading.Lock()
        self.dead = False  # fault knob: the SSH daemon is gone (connections are refused)

    def start(self, address: str, port: int = 22) -> None:
        """Listen on ``address:port`` (call from a thread inside the phone's namespace)."""
        self.stop()
        if self.dead:
            return
        listener = socket.create_server((address, port), backlog=8)
        self.listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True,
                         name=f"ssh-{address}").start()

    def stop(self) -> None:
        """Close the listener and every session (reboot, power loss)."""
        with self.lock:
            listener, self.listener = self.listener, None
            transports, self.transports = self.transports, []
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        for transport in transports:
            transport.close()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            threading.Thread(target=self._session, args=(sock,), daemon=True).start()

    def _session(self, sock: socket.socket) -> None:
        transport = paramiko.Transport(sock)
        transport.add_server_key(self.host_key)
        with self.lock:
            if self.listener is None:
                transport.close()
                return
            self.transports.append(transport)
        policy = _SessionPolicy(self.username, self.password)
        try:
            transport.start_server(server=policy)
            while (channel := transport.accept()) is not None:  # None: connection ended
                threading.Thread(target=self._channel, args=(channel, policy),
                                 daemon=True).start()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            log.debug("ssh connection ended: %s", exc)
        finally:
            transport.close()
            with self.lock:
                if transport in self.transports:
                    self.transports.remove(transport)

    def _channel(self, channel: paramiko.Channel, policy: _SessionPolicy) -> None:
        """One session channel: an exec or an interactive shell (several per connection)."""
        asked, command = policy.wait_request(channel, AUTH_TIMEOUT_S)
        if not asked:
            channel.close()
            return
        shell = PhoneShell(self.phone, self.username)
        try:
            if command is not None:
                self._exec(channel, shell, command)
            else:
                self._interactive(channel, shell)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            log.debug("ssh channel ended: %s", exc)

    def _exec(self, channel: paramiko.Channel, shell: PhoneShell, command: str) -> None:
        result = shell.run(command)
        channel.sendall(result.output.encode())
        channel.send_exit_status(result.status)
        channel.shutdown_write()
        channel.close()
        if result.then is not None:
            result.then()

    def _interactive(self, channel: paramiko.Channel, shell: PhoneShell) -> None:
        channel.sendall(shell.prompt.encode())
        buffer = b""
        while True:
            data = channel.recv(1024)
            if not data:
                return
            buffer += data
            echo = bytes(b for b in data if b >= 32 and b != 127)
            if echo:
                channel.sendall(echo)  # the pty echoes what is typed
            while (cut := _line_end(buffer)) is not None:
                line, buffer = buffer[:cut[0]], buffer[cut[1]:]
                result = shell.run(line.decode("utf-8", "replace"))
                channel.sendall(("\r\n" + result.output.replace("\n", "\r\n")).encode())
                if result.logout or result.restarts:
                    channel.send_exit_status(result.status)
                    channel.close()
                    if result.then is not None:
                        result.then()
                    return
                channel.sendall(shell.prompt.encode())
                if result.then is not None:
                    result.then()


def _line_end(buffer: bytes) -> tuple[int, int] | None:
    """(end of line, start of the rest) for the first CR, LF or CRLF in ``buffer``."""
    for i, byte in enumerate(buffer):
        if byte in (10, 13):
            if byte == 13 and buffer[i + 1:i + 2] == b"\n":
                return i, i + 2
            return i, i + 1
    return None
