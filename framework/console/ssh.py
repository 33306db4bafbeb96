"""An SSH console (paramiko): an interactive shell channel behind the ``Console`` protocol.

The host-key policy comes from the rig (``console.ssh.host_key_policy``):

- ``reject``: only keys in ``known_hosts`` are accepted;
- ``accept``: any key (its fingerprint is still noted in the console log);
- ``warn-and-record`` (default): an unknown key is accepted with a warning, its
  fingerprint is noted in the log and recorded (in ``known_hosts`` when the rig names
  one, else for this process). A key that differs from ``known_hosts`` is always
  rejected; one that differs from a key recorded earlier in this run is warned about
  again, since a simulated or factory-reset phone makes a new key.

The TCP connection and paramiko's transport thread start in the calling thread, so in
its network namespace.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import paramiko

from framework.console.base import DEFAULT_PROMPT, ConsoleError, Pattern, StreamConsole
from framework.console.log import PhoneLog

log = logging.getLogger(__name__)

HOST_KEY_POLICIES = ("reject", "accept", "warn-and-record")


def fingerprint(key: paramiko.PKey) -> str:
    """``ssh-ed25519 SHA256:...`` as ``ssh-keygen -l`` prints it."""
    return f"{key.get_name()} {key.fingerprint}"


class _RecordedKeys:
    """Host keys seen in this process under warn-and-record (host -> key)."""

    def __init__(self) -> None:
        self.keys: dict[str, paramiko.PKey] = {}
        self.lock = threading.Lock()


_recorded = _RecordedKeys()


class _HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko for a key not in the client's known hosts."""

    def __init__(self, console: SshConsole) -> None:
        self.console = console

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        con = self.console
        shown = fingerprint(key)
        if con.host_key_policy == "reject":
            con.log.note(con.channel, f"host key {shown} for {hostname} is not known: rejected")
            raise ConsoleError(f"{con.name}: host key {shown} for {hostname} is not in "
                               f"{con.known_hosts or 'any known_hosts file'} and the policy "
                               f"is reject")
        if con.host_key_policy == "accept":
            con.log.note(con.channel, f"host key {shown} for {hostname} accepted (policy accept)")
            return
        with _recorded.lock:
            earlier = _recorded.keys.get(hostname)
            _recorded.keys[hostname] = key
        if earlier is not None and earlier == key:
            con.log.note(con.channel, f"host key {shown} for {hostname} as recorded earlier")
            return
        what = (f"CHANGED since earlier in this run (was {fingerprint(earlier)})"
                if earlier is not None else "unknown")
        log.warning("%s: host key %s for %s is %s; accepting and recording it",
                    con.name, shown, hostname, what)
        con.log.note(con.channel, f"WARNING host key {shown} for {hostname} is {what}; "
                     f"accepted and recorded (policy warn-and-record)")
        if con.known_hosts is not None:
            client.get_host_keys().add(hostname, key.get_name(), key)
            con.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            client.save_host_keys(str(con.known_hosts))


class SshConsole(StreamConsole):
    """``Console`` over an SSH interactive shell (password authentication)."""

    channel = "ssh"

    def __init__(self, name: str, log: PhoneLog, host: str, port: int, username: str,
                 password: str, *, host_key_policy: str = "warn-and-record",
                 known_hosts: Path | None = None, prompt: Pattern = DEFAULT_PROMPT,
                 connect_timeout: float = 10.0) -> None:
        super().__init__(name, log, prompt=prompt)
        if host_key_policy not in HOST_KEY_POLICIES:
            raise ValueError(f"host_key_policy must be one of {', '.join(HOST_KEY_POLICIES)}, "
                             f"not {host_key_policy!r}")
        self.host, self.port, self.username = host, port, username
        self._password = password
        self.host_key_policy = host_key_policy
        self.known_hosts = known_hosts
        self.connect_timeout = connect_timeout
        self._client: paramiko.SSHClient | None = None
        self._chan: paramiko.Channel | None = None
        log.add_secret(password)

    def __repr__(self) -> str:
        return f"SshConsole({self.name!r}, {self.username}@{self.host}:{self.port})"

    def _describe(self) -> str:
        return f"ssh://{self.username}@{self.host}:{self.port}"

    def _open_stream(self) -> None:
        client = paramiko.SSHClient()
        if self.known_hosts is not None and self.known_hosts.exists():
            client.load_host_keys(str(self.known_hosts))
        client.set_missing_host_key_policy(_HostKeyPolicy(self))
        try:
            client.connect(self.host, self.port, username=self.username,
                           password=self._password, timeout=self.connect_timeout,
                           banner_timeout=self.connect_timeout,
                           auth_timeout=self.connect_timeout, look_for_keys=False,
                           allow_agent=False)
            chan = client.invoke_shell(term="dumb", width=200, height=50)
            chan.settimeout(0.05)
        except paramiko.BadHostKeyException as exc:
            client.close()
            self.log.note(self.channel, f"host key {fingerprint(exc.key)} does not match "
                          f"{fingerprint(exc.expected_key)} in {self.known_hosts}: rejected")
            raise ConsoleError(f"{self.name}: host key for {self.host} changed: got "
                               f"{fingerprint(exc.key)}, {self.known_hosts} has "
                               f"{fingerprint(exc.expected_key)}") from None
        except paramiko.AuthenticationException:
            client.close()
            self.log.note(self.channel, f"authentication as {self.username} failed")
            raise ConsoleError(f"{self.name}: SSH authentication as {self.username!r} failed "
                               f"at {self.host}:{self.port} (check the rig credentials)"
                               ) from None
        except ConsoleError:
            client.close()
            raise
        except (paramiko.SSHException, OSError) as exc:
            client.close()
            raise ConsoleError(f"{self.name}: cannot open SSH console {self.host}:{self.port}: "
                               f"{exc or type(exc).__name__}") from None
        self._client, self._chan = client, chan

    def _read_stream(self) -> bytes:
        chan = self._chan
        if chan is None:
            raise EOFError("channel closed")
        try:
            data = chan.recv(4096)
        except TimeoutError:  # socket.timeout: nothing within the poll interval
            return b""
        if not data:
            status = chan.exit_status if chan.exit_status_ready() else None
            raise EOFError("remote closed the shell" +
                           (f" (exit status {status})" if status is not None else ""))
        return bytes(data)

    def _write_stream(self, data: bytes) -> None:
        if self._chan is None:
            raise ConsoleError(f"{self.name}: console is not open")
        self._chan.sendall(data)

    def _close_stream(self) -> None:
        chan, client = self._chan, self._client
        self._chan = self._client = None
        if chan is not None:
            chan.close()
        if client is not None:
            client.close()
