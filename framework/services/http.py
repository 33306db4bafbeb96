"""Recording HTTP and HTTPS servers (stdlib ``ThreadingHTTPServer``).

The ``http://`` and ``https://`` forms of Option 160 (Admin Manual 2.2.8,
Table 10-1) and of Option 66 (10.2.2, Table 10-2) end up here.

Each request becomes one ``RequestRecord``: method, path as sent, Host header (the host
the phone named), User-Agent (``AUDC-IPPhone/<version> (<model>G-Rev0; <MAC>)``), Range,
status and body bytes. HTTPS wraps each accepted connection in TLS in its own thread,
records the SNI through ``SSLContext.sni_callback`` and records failed handshakes too
(a phone rejecting the lab certificate is evidence). Malformed requests get the standard
error reply and an ``error`` record; credentials (Authorization, Cookie) are never kept.

Content comes from a ``ContentStore``: serve (with single-range ``Range`` support),
not-found (404), or cut (the full Content-Length is announced, then the connection is
closed after N body bytes).
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import unquote, urlsplit

from framework.services.content import ContentStore, ContentUnavailable, Resolved
from framework.services.log import Outcome, RequestLog, RequestRecord, build_url
from framework.services.namespace import RecordingServer, ServiceStartError, in_namespace
from framework.services.tls import LabCA
from framework.services.tls_terminator import TlsTerminator

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
#: How long a silent path holds a connection without answering (the client gives up first).
SILENT_HOLD_S = 60.0
HIDDEN_HEADERS = {"authorization", "proxy-authorization", "cookie"}


def _split_host(value: str) -> tuple[str, int | None]:
    """``name[:port]`` / ``[v6]:port`` -> (host as written, port or None)."""
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    else:
        host, port_text = value, ""
    try:
        port = int(port_text) if port_text else None
    except ValueError:
        port = None
    return host, port


class _RecordingHandler(BaseHTTPRequestHandler):
    """Serves GET/HEAD from the content store and records every request."""

    protocol_version = "HTTP/1.1"
    # A request line too broken to name a version still gets a status line in the
    # error reply (the stdlib would assume HTTP/0.9 and send a bare HTML body).
    default_request_version = "HTTP/1.0"
    server_version = "hil400hd-provisioning"
    sys_version = ""
    timeout = 30  # an idle keep-alive connection is closed after this
    server: _LabHTTPServer

    # --- methods ---------------------------------------------------------------------

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _refuse(self) -> None:
        self._drain_body()
        payload = f"{self.command} is not supported: this server only serves files\n".encode()
        self.send_response(405)
        self.send_header("Allow", "GET, HEAD")
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self._record(Outcome.DENIED, 405, len(payload),
                     {"error": f"method {self.command} not allowed"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

    def _drain_body(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if 0 < length <= 1 << 20:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    # --- GET / HEAD ------------------------------------------------------------------

    def _serve(self, *, body: bool) -> None:
        server = self.server
        lookup_path = unquote(urlsplit(self.path).path or "/")
        resolved = server.content.lookup(lookup_path, host=self._host(),
                                         protocol=server.protocol,
                                         client=self.client_address[0])
        if resolved.kind == "silent":
            self._record(Outcome.ERROR, None, 0, {"error": resolved.reason})
            self.close_connection = True
            with contextlib.suppress(OSError):  # held until the client gives up
                self.connection.settimeout(SILENT_HOLD_S)
                self.rfile.read(1)
            return
        if not resolved.found:
            self._send_text(404, f"not found: {lookup_path}\n", body=body,
                            outcome=Outcome.NOT_FOUND, details={"error": resolved.reason})
            return
        size = resolved.size
        start, end = 0, size - 1
        status = 200
        range_header = self.headers.get("Range")
        if range_header is not None:
            parsed = _parse_range(range_header, size)
            if isinstance(parsed, str):  # "unsatisfiable"
                self._send_text(416, f"range {range_header!r} not satisfiable\n", body=body,
                                outcome=Outcome.ERROR,
                                extra_headers={"Content-Range": f"bytes */{size}"},
                                details={"error": "range not satisfiable"})
                return
            if parsed is not None:
                start, end = parsed
                status = 206
        length = max(0, end - start + 1)
        try:
            stream = resolved.open()
        except ContentUnavailable as exc:
            self._send_text(404, f"not found: {lookup_path}\n", body=body,
                            outcome=Outcome.NOT_FOUND, details={"error": str(exc)})
            return
        with stream:
            self.send_response(status)
            ctype = mimetypes.guess_type(lookup_path)[0] or "application/octet-stream"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if not body:
                self._record(Outcome.SERVED, status, 0, {})
                return
            self._send_body(stream, start, length, resolved, status)

    def _send_body(self, stream: Any, start: int, length: int, resolved: Resolved,
                   status: int) -> None:
        limit = length if resolved.cut_after is None else min(length, resolved.cut_after)
        stream.seek(start)
        sent = 0
        try:
            while sent < limit:
                chunk = stream.read(min(CHUNK, limit - sent))
                if not chunk:
                    break
                self.wfile.write(chunk)
                sent += len(chunk)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError, ssl.SSLError) as exc:
            self.close_connection = True
            self._record(Outcome.ERROR, status, sent,
                         {"error": f"client went away after {sent} of {length} bytes: {exc}"})
            return
        if sent < length:  # the cut: announce everything, deliver part, hang up
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._record(Outcome.CUT, status, sent,
                         {"cut_after": resolved.cut_after, "content_length": length})
            return
        self._record(Outcome.SERVED, status, sent, {})

    def _send_text(self, status: int, text: str, *, body: bool, outcome: Outcome,
                   details: dict[str, Any], extra_headers: dict[str, str] | None = None) -> None:
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (extra_headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(payload)
        self._record(outcome, status, len(payload) if body else 0, details)

    # --- errors from the stdlib parser (bad request line, unknown method, ...) ----------

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        line = getattr(self, "requestline", "") or getattr(self, "raw_requestline", b"")
        if isinstance(line, bytes):
            line = line.decode("latin-1").rstrip("\r\n")
        self._record(Outcome.ERROR, code, 0,
                     {"error": message or self.responses.get(code, ("",))[0],
                      "request_line": line[:300]})
        super().send_error(code, message, explain)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s - " + format, self.server.protocol, self.client_address[0], *args)

    # --- recording -------------------------------------------------------------------

    def _host(self) -> str:
        """The host the client named: Host header, else SNI, else our DNS, else our IP."""
        header = self.headers.get("Host") if hasattr(self, "headers") else None
        if header:
            return _split_host(header)[0]
        target_host = urlsplit(getattr(self, "path", "") or "").hostname
        if target_host:
            return target_host
        sni = getattr(self.connection, "lab_sni", None)
        if sni:
            return str(sni)
        return self.server.log.host_for(self.client_address[0], self.server.address)

    def _record(self, outcome: Outcome, status: int | None, nbytes: int,
                details: dict[str, Any]) -> None:
        server = self.server
        headers = getattr(self, "headers", None)
        path = getattr(self, "path", "") or ""
        command = getattr(self, "command", "") or ""
        info: dict[str, Any] = {}
        if headers is not None:
            info["headers"] = {k: v for k, v in headers.items()
                               if k.lower() not in HIDDEN_HEADERS}
            if headers.get("Authorization"):
                info["authorization_scheme"] = headers["Authorization"].split(" ", 1)[0]
            if headers.get("Range"):
                info["range"] = headers["Range"]
            if headers.get("Host"):
                info["host_header"] = headers["Host"]
        if getattr(self, "request_version", None):
            info["http_version"] = self.request_version
        if server.protocol == "https" and isinstance(self.connection, ssl.SSLSocket):
            info["sni"] = getattr(self.connection, "lab_sni", None)
            info["tls_version"] = self.connection.version()
        info.update(details)
        host = self._host()
        url: str | None = None
        if path:
            split = urlsplit(path)
            if split.scheme and split.netloc:  # absolute-form target
                url = path
            else:
                target = path if path.startswith("/") else "/" + path
                header = headers.get("Host") if headers is not None else None
                url = (f"{server.protocol}://{header.strip()}{target}" if header
                       else build_url(server.protocol, host, server.port, target))
        server.log.append(RequestRecord(
            time=getattr(self, "_received", time.time()), protocol=server.protocol,
            client_ip=self.client_address[0], client_port=self.client_address[1],
            server_ip=server.address, server_port=server.port, host=host, path=path,
            url=url, method=command, outcome=outcome, status=status, bytes_sent=nbytes,
            user_agent=headers.get("User-Agent") if headers is not None else None,
            details=info))

    def handle_one_request(self) -> None:
        self._received = time.time()
        super().handle_one_request()


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=a-b`` / ``a-`` / ``-n`` range -> (first, last); None to ignore the header
    (RFC 9110 14.2: multiple or malformed ranges may be ignored); "unsatisfiable"."""
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first_text == "":
            suffix = int(last_text)
            if suffix <= 0:
                return "unsatisfiable"
            return max(0, size - suffix), size - 1
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        return None
    if first > last or first < 0:
        return None
    if first >= size:
        return "unsatisfiable"
    return first, min(last, size - 1)


class _LabHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, owner: HttpServer, tls: TlsTerminator | None) -> None:
        self.owner = owner
        self.protocol = owner.protocol
        self.address = owner.address
        self.log = owner.log
        self.content = owner.content
        self.tls = tls
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((owner.address, owner.requested_port), _RecordingHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def finish_request(self, request: Any, client_address: Any) -> None:
        connection = request
        if self.tls is not None:
            connection = self.tls.wrap(self, request, client_address)
            if connection is None:
                return
        with self._connections_lock:
            self._connections.add(connection)
        try:
            _RecordingHandler(connection, client_address, self)
        finally:
            with self._connections_lock:
                self._connections.discard(connection)
            if connection is not request:
                try:
                    connection.close()
                except OSError:
                    pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.warning("%s connection from %s ended with an error", self.protocol,
                       client_address[0], exc_info=True)

    def hang_up_all(self) -> None:
        """Close every open client connection (used by stop)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class HttpServer(RecordingServer):
    """A recording HTTP server on one address, serving from a ContentStore.

    Runs in network namespace ``netns`` (or the caller's); port 0 picks a free port.
    """

    protocol = "http"

    def __init__(self, address: str, port: int = 80, *, log: RequestLog, content: ContentStore,
                 netns: str | None = None) -> None:
        super().__init__(address, port, log=log, netns=netns)
        self.content = content
        self._server: _LabHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (after ``start``), else the requested one."""
        return self._server.port if self._server is not None else self.requested_port

    def _tls(self) -> TlsTerminator | None:
        return None

    def start(self) -> Self:
        if self._server is not None:
            return self
        tls = self._tls()
        with in_namespace(self.netns):
            try:
                self._server = _LabHTTPServer(self, tls)
            except OSError as exc:
                raise ServiceStartError(f"{self.protocol.upper()} cannot listen on "
                                        f"{self.address}:{self.requested_port}: "
                                        f"{exc.strerror}") from exc
            self._thread = threading.Thread(target=self._server.serve_forever,
                                            kwargs={"poll_interval": 0.1}, daemon=True,
                                            name=f"{self.protocol}-{self.address}:{self.port}")
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, hang up open connections, release the port."""
        if self._server is None:
            return
        server, thread = self._server, self._thread
        server.shutdown()
        server.hang_up_all()
        server.server_close()
        if thread is not None:
            thread.join(timeout)
        self._server = None
        self._thread = None


class HttpsServer(HttpServer):
    """The HTTPS variant: TLS with a certificate from the lab CA.

    The certificate covers ``names`` and the server address. With ``mint_for_sni``
    (default) a client asking (SNI) for a name not covered gets a certificate for that
    name from the same CA, so any name the zone points here validates against the lab
    CA; turn it off to test how a phone handles a name mismatch.
    """

    protocol = "https"

    def __init__(self, address: str, port: int = 443, *, log: RequestLog,
                 content: ContentStore, ca: LabCA, names: Sequence[str] = (),
                 netns: str | None = None, mint_for_sni: bool = True) -> None:
        super().__init__(address, port, log=log, content=content, netns=netns)
        self.ca = ca
        self.names = tuple(dict.fromkeys((*names, address)))
        self.mint_for_sni = mint_for_sni

    def _tls(self) -> TlsTerminator:
        return TlsTerminator(self.ca, self.names, self.mint_for_sni)

    def present(self, name: str, context: ssl.SSLContext | None) -> None:
        """Present ``context``'s certificate to clients asking (SNI) for ``name``; None
        puts the lab certificate back. Other names are not affected."""
        tls = self._server.tls if self._server is not None else None
        if tls is None:
            raise ValueError("HTTPS server not started: cannot present a certificate")
        key = name.lower().rstrip(".")
        if context is None:
            tls.presented.pop(key, None)
        else:
            tls.presented[key] = context

    @property
    def ca_pem_path(self) -> str:
        """The CA certificate clients must trust (``curl --cacert``)."""
        return str(self.ca.ca_pem_path)


__all__ = ["HttpServer", "HttpsServer"]
