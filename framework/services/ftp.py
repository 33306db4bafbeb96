"""Recording FTP server (pyftpdlib) serving the ContentStore as a read-only tree.

For the ``ftp://`` provisioning URLs of Option 160 and Option 66 (Admin Manual 2.2.8,
Table 10-1, and 10.2.2, Table 10-2).

Every command that touches a file or directory (RETR, SIZE, MDTM, CWD, LIST, NLST,
MLSD, MLST, STOR, DELE, ...) becomes a ``RequestRecord`` with the reply code, and so do
logins (user name only) and unknown commands. Commands are captured in
``pre_process_command`` because a client never sends RETR for a missing file: curl sends
CWD/SIZE, gets 550 and stops (LAB-NOTES.md), so the SIZE record is the evidence of what
was asked. A RETR is recorded when its data transfer ends, with the bytes sent.
Passwords are never recorded or logged. ``auth_failed_timeout = 0``: a failed login is
answered at once (pyftpdlib otherwise waits 3 s).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import posixpath
import socket
import stat
import sys
import threading
import time
import warnings
from collections.abc import Mapping
from typing import Any, Self

with warnings.catch_warnings():
    # pyftpdlib 2.x on Python 3.11 imports the stdlib asyncore/asynchat, which warn
    # about their removal in 3.12 (pyftpdlib vendors them there): noise for our users.
    warnings.simplefilter("ignore", DeprecationWarning)
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.exceptions import FilesystemError
    from pyftpdlib.filesystems import AbstractedFS
    from pyftpdlib.handlers import DTPHandler, FTPHandler
    from pyftpdlib.ioloop import AsyncChat, IOLoop
    from pyftpdlib.servers import FTPServer

from framework.services.content import ContentStore, Resolved
from framework.services.log import Outcome, RequestLog, RequestRecord, build_url
from framework.services.namespace import RecordingServer, ServiceStartError, in_namespace

logger = logging.getLogger(__name__)
# pyftpdlib configures root logging on first use unless its logger has a handler.
logging.getLogger("pyftpdlib").addHandler(logging.NullHandler())

PATH_COMMANDS = frozenset({
    "RETR", "SIZE", "MDTM", "CWD", "XCWD", "CDUP", "XCUP", "LIST", "NLST", "MLSD", "MLST",
    "STAT", "STOR", "STOU", "APPE", "DELE", "RMD", "XRMD", "MKD", "XMKD", "RNFR", "RNTO",
    "SITE CHMOD", "MFMT",
})
TRANSFER_COMMANDS = frozenset({"RETR"})  # recorded when the data transfer ends
MAX_LINE = 2048  # pyftpdlib's command-line limit


class _ContentStream(io.RawIOBase):
    """The bytes of one RETR; raises EIO at the cut so pyftpdlib aborts with 426."""

    def __init__(self, name: str, data: bytes, cut_after: int | None) -> None:
        self.name = name
        self._data = data
        self._pos = 0
        self._cut_after = cut_after

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._data)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        end = len(self._data) if size is None or size < 0 else self._pos + size
        if self._cut_after is not None:
            if self._pos >= self._cut_after:
                raise OSError(errno.EIO, f"transfer cut by policy after {self._cut_after} bytes")
            end = min(end, self._cut_after)
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk


def _stat_result(mode: int, size: int, mtime: float) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 1, 0, 0, size, int(mtime), int(mtime), int(mtime)))


class _ContentFS(AbstractedFS):
    """A read-only virtual tree: the ContentStore's served paths, directories implied."""

    cmd_channel: _RecordingFTPHandler

    # virtual ("ftp") paths are the store's keys: no real filesystem behind them
    def ftp2fs(self, ftppath: str) -> str:
        return str(self.ftpnorm(ftppath))

    def fs2ftp(self, fspath: str) -> str:
        return posixpath.normpath(posixpath.join(self.cwd, fspath))

    def validpath(self, path: str) -> bool:
        return True

    def realpath(self, path: str) -> str:
        return path

    def _server(self) -> FtpServer:
        return self.cmd_channel.lab

    def _resolve(self, path: str) -> Resolved:
        server = self._server()
        return server.content.lookup(path, host=self.cmd_channel.lab_host(), protocol="ftp",
                                     client=self.cmd_channel.remote_ip)

    def _paths(self) -> list[str]:
        return self._server().content.paths(host=self.cmd_channel.lab_host(), protocol="ftp")

    def isfile(self, path: str) -> bool:
        return self._resolve(path).found

    def isdir(self, path: str) -> bool:
        prefix = path.rstrip("/") + "/"
        return path == "/" or any(p.startswith(prefix) for p in self._paths())

    def islink(self, path: str) -> bool:
        return False

    def lexists(self, path: str) -> bool:
        return self.isfile(path) or self.isdir(path)

    def getsize(self, path: str) -> int:
        resolved = self._resolve(path)
        if not resolved.found:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return resolved.size

    def getmtime(self, path: str) -> float:
        resolved = self._resolve(path)
        if resolved.file is not None:
            try:
                return os.stat(resolved.file).st_mtime
            except OSError:
                pass
        return self._server().started_at

    def stat(self, path: str) -> os.stat_result:
        if self.isdir(path):
            return _stat_result(stat.S_IFDIR | 0o555, 0, self._server().started_at)
        resolved = self._resolve(path)
        if not resolved.found:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return _stat_result(stat.S_IFREG | 0o444, resolved.size, self.getmtime(path))

    lstat = stat

    def listdir(self, path: str) -> list[str]:
        if not self.isdir(path):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
        prefix = path.rstrip("/") + "/"
        names = {p[len(prefix):].split("/", 1)[0] for p in self._paths() if p.startswith(prefix)}
        return sorted(n for n in names if n)

    listdirinfo = listdir

    def chdir(self, path: str) -> None:
        if not self.isdir(path):
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        self.cwd = path

    def open(self, filename: str, mode: str) -> Any:
        if any(flag in mode for flag in "wa+x"):
            raise FilesystemError("read-only provisioning server")
        resolved = self._resolve(filename)
        if not resolved.found:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), filename)
        try:
            data = resolved.read_all()
        except FileNotFoundError as exc:
            raise OSError(errno.ENOENT, os.strerror(errno.ENOENT), filename) from exc
        self.cmd_channel.lab_opened[filename] = resolved
        return _ContentStream(filename, data, resolved.cut_after)

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise FilesystemError("read-only provisioning server")

    mkdir = rmdir = remove = rename = chmod = utime = _read_only

    def readlink(self, path: str) -> str:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), path)

    def get_user_by_uid(self, uid: int) -> str:
        return "lab"

    def get_group_by_gid(self, gid: int) -> str:
        return "lab"


class _DataChannel(DTPHandler):
    """pyftpdlib's data channel, replying ``426 transfer cut by policy ...`` at a cut
    (its own reply would read ``426 None; transfer aborted.``)."""

    def handle_error(self) -> None:
        cause = getattr(sys.exc_info()[1], "__cause__", None)
        if isinstance(cause, OSError) and cause.errno == errno.EIO:
            self._resp = (f"426 {cause.strerror}; transfer aborted.", logger.info)
            self.close()
            return
        super().handle_error()


class _RecordingFTPHandler(FTPHandler):
    """pyftpdlib's protocol interpreter, recording file commands, logins and bad input."""

    abstracted_fs = _ContentFS
    dtp_handler = _DataChannel
    auth_failed_timeout = 0
    use_sendfile = False
    timeout = 60
    banner = "hil400hd provisioning FTP server ready."
    lab: FtpServer  # set on the per-server subclass

    def __init__(self, conn: socket.socket, server: FTPServer, ioloop: Any = None) -> None:
        self.lab_command: tuple[float, str, str] | None = None
        self.lab_opened: dict[str, Resolved] = {}
        self.lab_transfer_started: dict[str, float] = {}
        super().__init__(conn, server, ioloop=ioloop)

    def lab_host(self) -> str:
        return self.lab.log.host_for(str(self.remote_ip), self.lab.address)

    # --- capture ---------------------------------------------------------------------

    def collect_incoming_data(self, data: bytes) -> None:
        overflow = self._in_buffer_len + len(data) > MAX_LINE
        super().collect_incoming_data(data)
        if overflow:
            self._lab_record(time.time(), "?", "", Outcome.ERROR, 500,
                             {"error": f"command line longer than {MAX_LINE} bytes"})

    def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
        shown = "" if cmd == "PASS" else arg  # the password never leaves this frame
        self.lab_command = (time.time(), cmd, shown)
        super().pre_process_command(line, cmd, arg)

    def log_cmd(self, cmd: str, arg: str, respcode: int, respstr: str) -> None:
        super().log_cmd(cmd, "" if cmd == "PASS" else arg, respcode, respstr)
        if cmd == "PASS" or (cmd in ("USER",) and respcode < 400):
            return  # logins are recorded by on_login / on_login_failed
        known = cmd in self.proto_cmds
        if known and cmd not in PATH_COMMANDS and respcode < 400:
            return  # TYPE, PASV, EPSV, FEAT, PWD, NOOP...: not requests for content
        when = self.lab_command[0] if self.lab_command else time.time()
        raw_arg = self.lab_command[2] if self.lab_command else arg
        if cmd in TRANSFER_COMMANDS and 100 <= respcode < 200:
            self.lab_transfer_started[arg] = when
            return  # recorded by log_transfer when the data connection closes
        path = arg if known and cmd in PATH_COMMANDS and self.fs is not None else ""
        details: dict[str, Any] = {"reply": f"{respcode} {respstr}"[:200]}
        if raw_arg and raw_arg != path:
            details["argument"] = raw_arg[:200]
        if not known:
            details["error"] = f"unknown command {cmd[:40]!r}"
        self._lab_record(when, cmd, path, self._outcome(cmd, path, respcode, respstr),
                         respcode, details)

    def log_transfer(self, cmd: str, filename: str, receive: bool, completed: bool,
                     elapsed: float, bytes: int) -> None:
        super().log_transfer(cmd, filename, receive, completed, elapsed, bytes)
        resolved = self.lab_opened.pop(filename, None)
        reply = self._last_response
        code = int(reply[:3]) if reply[:3].isdigit() else None
        details: dict[str, Any] = {"reply": reply[:200], "elapsed": elapsed,
                                   "transfer_type": "binary" if self._current_type == "i"
                                   else "ascii"}
        if completed:
            outcome = Outcome.SERVED
        elif resolved is not None and resolved.cut_after is not None:
            outcome = Outcome.CUT
            details["cut_after"] = resolved.cut_after
        else:
            outcome = Outcome.ERROR
            details["error"] = "transfer aborted before the end"
        when = self.lab_transfer_started.pop(filename, time.time())
        self._lab_record(when, cmd, filename, outcome, code, details, nbytes=int(bytes))

    def close(self) -> None:
        """Close the session; a RETR whose data never flowed is still recorded."""
        super().close()
        for path, when in list(self.lab_transfer_started.items()):
            del self.lab_transfer_started[path]
            self.lab_opened.pop(path, None)
            self._lab_record(when, "RETR", path, Outcome.ERROR, None,
                             {"error": "session closed before the data transfer ran"})

    def on_login(self, username: str) -> None:
        self._lab_record(self._command_time(), "LOGIN", "", Outcome.SERVED, 230,
                         {"user": username}, user=username)

    def on_login_failed(self, username: str, password: str) -> None:
        self._lab_record(self._command_time(), "LOGIN", "", Outcome.DENIED, 530,
                         {"user": username, "error": "authentication failed"}, user=username)

    # --- recording -------------------------------------------------------------------

    def _command_time(self) -> float:
        return self.lab_command[0] if self.lab_command else time.time()

    def _outcome(self, cmd: str, path: str, code: int, text: str) -> Outcome:
        if code < 400:
            return Outcome.SERVED
        if code == 530:
            return Outcome.DENIED
        if code == 550:
            if "privileges" in text or "read-only" in text:
                return Outcome.DENIED
            if path and self.fs is not None and not self.fs.lexists(path):
                return Outcome.NOT_FOUND
        return Outcome.ERROR

    def _lab_record(self, when: float, cmd: str, path: str, outcome: Outcome,
                    status: int | None, details: dict[str, Any], *, nbytes: int = 0,
                    user: str | None = None) -> None:
        lab = self.lab
        host = self.lab_host()
        user = user if user is not None else (self.username or None)
        if user:
            details = {"user": user, **details}
        details["host_from"] = "address" if host == lab.address else "dns"
        lab.log.append(RequestRecord(
            time=when, protocol="ftp", client_ip=str(self.remote_ip),
            client_port=int(self.remote_port) if self.remote_port else None,
            server_ip=lab.address, server_port=lab.port, host=host, path=path,
            url=build_url("ftp", host, lab.port, path) if path else None, method=cmd,
            outcome=outcome, status=status, bytes_sent=nbytes, details=details))


class _StopSignal(AsyncChat):
    """One end of a socketpair in the IOLoop: a byte written to the other end closes the
    loop from its own thread (pyftpdlib's loop is not thread-safe)."""

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def handle_read(self) -> None:
        self.ioloop.close()


class FtpServer(RecordingServer):
    """A recording, read-only FTP server on one address, serving a ContentStore.

    ``users`` maps user names to passwords (never logged); ``anonymous`` allows the
    ``anonymous``/``ftp`` login. Runs in ``netns`` (or the caller's); port 0 picks a
    free port. Passive data ports are kernel-chosen unless ``passive_ports`` is given.
    """

    protocol = "ftp"

    def __init__(self, address: str, port: int = 21, *, log: RequestLog, content: ContentStore,
                 netns: str | None = None, users: Mapping[str, str] | None = None,
                 anonymous: bool = True, passive_ports: range | None = None) -> None:
        super().__init__(address, port, log=log, netns=netns)
        self.content = content
        self.started_at = time.time()
        self._authorizer = DummyAuthorizer()
        for name, password in (users or {}).items():
            if not name or name in ("anonymous", "ftp"):
                raise ValueError(f"FTP: {name!r} cannot be a named user (use anonymous=True)")
            self._authorizer.add_user(name, password, "/", perm="elr")
        if anonymous:
            self._authorizer.add_anonymous("/", perm="elr")
        self._handler = type("LabFTPHandler", (_RecordingFTPHandler,), {
            "authorizer": self._authorizer, "lab": self,
            "passive_ports": list(passive_ports) if passive_ports else None})
        self._server: FTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop_w: socket.socket | None = None
        self._port = port

    @property
    def port(self) -> int:
        """The bound port (after ``start``), else the requested one."""
        return self._port

    def start(self) -> Self:
        if self._server is not None:
            return self
        self.started_at = time.time()
        with in_namespace(self.netns):
            ioloop = IOLoop()
            try:
                self._server = FTPServer((self.address, self.requested_port), self._handler,
                                         ioloop=ioloop)
            except OSError as exc:
                ioloop.close()
                raise ServiceStartError(f"FTP cannot listen on {self.address}:"
                                        f"{self.requested_port}: {exc.strerror}") from exc
            self._port = int(self._server.address[1])
            stop_r, self._stop_w = socket.socketpair()
            _StopSignal(stop_r, ioloop=ioloop)
            server = self._server
            self._thread = threading.Thread(
                target=lambda: server.serve_forever(timeout=None, blocking=True,
                                                    handle_exit=False),
                daemon=True, name=f"ftp-{self.address}:{self._port}")
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Close the loop (and every session) from its own thread, then join it."""
        if self._server is None:
            return
        assert self._stop_w is not None
        try:
            self._stop_w.send(b"x")
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"FTP server on {self.address}:{self._port} did not stop "
                                   f"within {timeout:g} s")
        self._stop_w.close()
        self._stop_w = None
        self._server = None
        self._thread = None


__all__ = ["FtpServer"]
