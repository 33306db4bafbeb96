"""A scripted 400HD web interface (stdlib ``http.server``) on loopback, for the web client
tests: ``/login.cgi`` hands out a ``SESSIONID`` for the right user and base64 password
(``Login failed`` page without a cookie otherwise), ``/mainform.cgi/reboot.htm`` and
``/mainform.cgi/reset.htm`` (``CONFIG=2``) need the session, else ``302`` to
``/login.htm``. It records every request and calls ``on_reboot``/``on_reset``."""

from __future__ import annotations

import base64
import secrets
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs


@dataclass
class WebPhone:
    """The phone's side: its credentials, sessions, what it was asked, and what it does."""

    username: str = "admin"
    password: str = "1234"
    port: int = 0
    sessions: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, dict[str, list[str]], str | None]] = field(
        default_factory=list)  # (method, path, form, cookie)
    on_reboot: Callable[[], None] = lambda: None
    on_reset: Callable[[], None] = lambda: None
    hang_up_on_reboot: bool = False  # close the connection without an answer
    accept_sessions: bool = True


def _handler(phone: WebPhone) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _page(self, status: int, text: str, headers: dict[str, str] | None = None
                  ) -> None:
            body = f"<html><body>{text}</body></html>".encode()
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/":
                self._page(200, "<form action=/login.cgi>login</form>")
            else:
                self._page(404, "not found")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            cookie = self.headers.get("Cookie")
            phone.requests.append(("POST", self.path, form, cookie))
            if self.path == "/login.cgi":
                user = form.get("user", [""])[0]
                psw = form.get("psw", [""])[0]
                good = base64.b64encode(phone.password.encode()).decode()
                if user == phone.username and psw == good:
                    token = secrets.token_hex(8)
                    phone.sessions.add(token)
                    self._page(200, "welcome", {"Set-Cookie": f"SESSIONID={token}; Path=/"})
                else:
                    self._page(200, "Login failed")
                return
            if self.path not in ("/mainform.cgi/reboot.htm", "/mainform.cgi/reset.htm"):
                self._page(404, "not found")
                return
            token = (cookie or "").removeprefix("SESSIONID=")
            if not phone.accept_sessions or token not in phone.sessions:
                self._page(302, "moved", {"Location": "/login.htm"})
                return
            if self.path.endswith("reboot.htm"):
                if phone.hang_up_on_reboot:
                    self.close_connection = True
                    phone.on_reboot()
                    return
                self._page(200, "Restarting")
                phone.on_reboot()
            elif form.get("CONFIG") == ["2"]:
                self._page(200, "Restoring defaults")
                phone.on_reset()
            else:
                self._page(200, "nothing done")

    return Handler


@contextmanager
def web_phone(phone: WebPhone, host: str = "127.0.0.1", *, tls: tuple[Path, Path] | None = None
              ) -> Iterator[WebPhone]:
    """Serve ``phone`` on ``host`` (an ephemeral port unless ``phone.port``); ``tls`` is
    (certificate chain, key) for https."""
    server = ThreadingHTTPServer((host, phone.port), _handler(phone))
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    phone.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="web-phone")
    thread.start()
    try:
        yield phone
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
