"""The virtual phone's web interface: the few pages integrators script against
(REAL-PHONE.md "Control paths": reboot and factory defaults over HTTP).

- ``GET /`` (or ``/login.htm``): the login page.
- ``POST /login.cgi`` with ``user=<name>&psw=<base64(password)>``: right credentials give
  ``200`` with ``Set-Cookie: SESSIONID=<token>; Path=/``; wrong ones ``200`` with a page
  saying ``Login failed`` and no cookie (as real phones show the login page again).
- ``POST /mainform.cgi/reboot.htm`` (with the cookie): ``200``, then the phone restarts.
- ``POST /mainform.cgi/reset.htm`` with ``CONFIG=2`` (with the cookie): ``200``, settings
  back to factory defaults, then the phone restarts.
- Without a valid session both answer ``302`` to ``/login.htm`` and do nothing; anything
  else is ``404``.

It listens on port 80 of the phone's leased address, inside the phone's namespace, only
while the phone has that address (like the SSH server); a restart ends every session.
The restart runs after the response has been written, so the client gets its ``200``.
"""

from __future__ import annotations

import base64
import logging
import secrets
import socket
import threading
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import TCPServer, ThreadingMixIn
from typing import Protocol
from urllib.parse import parse_qs

log = logging.getLogger(__name__)
HTTP_PORT = 80
MAX_BODY = 64 * 1024
_PAGE = ("<!DOCTYPE html>\n<html><head><title>{model} Web</title></head><body>\n"
         "<h1>AudioCodes {model}</h1>\n{body}\n</body></html>\n")
_LOGIN_FORM = ('<form method="post" action="/login.cgi">User <input name="user"> '
               'Password <input name="psw" type="password"> '
               '<input type="submit" value="Login"></form>')


class WebTarget(Protocol):
    """What the web pages drive on the phone."""

    model: str

    def restart(self) -> None: ...

    def reset_to_defaults(self) -> None: ...


class _Server(ThreadingMixIn, HTTPServer):
    daemon_threads = True
    block_on_close = False
    web: PhoneWebServer

    def server_bind(self) -> None:
        """Bind without HTTPServer's ``getfqdn`` (a reverse DNS query that waits for the
        resolver's timeout in a phone's namespace)."""
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "AudioCodes-HTTP"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        log.info("web %s: %s", self.client_address[0], format % args)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] in ("/", "/login.htm", "/index.htm"):
            self._page(200, _LOGIN_FORM)
        else:
            self._page(404, "Not Found")

    def do_POST(self) -> None:
        web = self.server.web
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("Content-Length") or 0)
        if not 0 <= length <= MAX_BODY:
            self._page(413, "Request too large")
            return
        form = parse_qs(self.rfile.read(length).decode("utf-8", "replace"))
        if path == "/login.cgi":
            token = web.login(_one(form, "user"), _one(form, "psw"))
            if token is None:
                self._page(200, f"Login failed<br>{_LOGIN_FORM}")
            else:
                self._page(200, "Login OK", (("Set-Cookie", f"SESSIONID={token}; Path=/"),))
            return
        action: Callable[[], None] | None = {
            "/mainform.cgi/reboot.htm": web.phone.restart,
            "/mainform.cgi/reset.htm": web.phone.reset_to_defaults,
        }.get(path)
        if action is None:
            self._page(404, "Not Found")
            return
        if not web.valid(self._session()):
            self._page(302, "Login required", (("Location", "/login.htm"),))
            return
        if path.endswith("/reset.htm") and _one(form, "CONFIG") != "2":
            self._page(400, "Unsupported CONFIG (2: restore factory defaults)")
            return
        self._page(200, "The phone is restarting")
        self.wfile.flush()
        self.close_connection = True
        action()

    def _session(self) -> str:
        try:
            cookie = SimpleCookie(self.headers.get("Cookie") or "")
        except CookieError:
            return ""
        morsel = cookie.get("SESSIONID")
        return morsel.value if morsel is not None else ""

    def _page(self, status: int, body: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        data = _PAGE.format(model=self.server.web.phone.model, body=body).encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _one(form: dict[str, list[str]], name: str) -> str:
    values = form.get(name)
    return values[0] if values else ""


class PhoneWebServer:
    """The HTTP server of one phone; ``start`` in the phone's namespace thread."""

    def __init__(self, phone: WebTarget, username: str, password: Callable[[], str]) -> None:
        self.phone = phone
        self.username = username
        self.password = password
        self.server: _Server | None = None
        self.sessions: set[str] = set()
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int | None:
        server = self.server
        return server.server_address[1] if server is not None else None

    def start(self, address: str, port: int = HTTP_PORT) -> None:
        """Listen on ``address:port``; sessions of an earlier boot are gone."""
        self.stop()
        server = _Server((address, port), _Handler)
        server.web = self
        thread = threading.Thread(target=self._accept_loop, args=(server,), daemon=True,
                                  name=f"web-{address}")
        with self.lock:
            self.server, self._thread = server, thread
            self.sessions.clear()
        thread.start()

    def stop(self) -> None:
        """Close the listener (reboot, power loss); sessions end with it. The port is free
        on return: the accept thread holds the socket until ``accept`` returns."""
        with self.lock:
            server, self.server = self.server, None
            thread, self._thread = self._thread, None
            self.sessions.clear()
        if server is not None:
            try:
                server.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            server.server_close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def login(self, user: str, encoded_password: str) -> str | None:
        """A new session token for the right user and base64 password, else None."""
        try:
            # A client that did not form-encode its base64 sends "+" that arrives as " ".
            password = base64.b64decode(encoded_password.replace(" ", "+"),
                                        validate=True).decode("utf-8")
        except ValueError:   # not base64 (binascii.Error; non-ASCII too), not UTF-8
            return None
        if user != self.username or \
                not secrets.compare_digest(password.encode(), self.password().encode()):
            log.info("web login refused for %r", user)
            return None
        token = secrets.token_hex(16)
        with self.lock:
            self.sessions.add(token)
        return token

    def valid(self, token: str) -> bool:
        with self.lock:
            return bool(token) and token in self.sessions

    def _accept_loop(self, server: _Server) -> None:
        """Accept until ``stop`` closes the socket (no polling, as the SSH server)."""
        while True:
            try:
                request, client = server.socket.accept()
            except OSError:
                return
            server.process_request(request, client)
