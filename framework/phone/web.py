"""The 400HD's web interface, for what the lab needs of it: reboot and factory defaults.

Integrator scripts drive real phones this way (REAL-PHONE.md, "Control paths"):
``POST /login.cgi`` with ``user=<name>&psw=<base64 password>`` gives a ``SESSIONID``
cookie; with it, ``POST /mainform.cgi/reboot.htm`` restarts the phone and
``POST /mainform.cgi/reset.htm`` with ``CONFIG=2`` restores factory defaults (and
restarts). A refused login is a page without a cookie (``Login failed``), not an HTTP
error; a request without a valid session is answered ``302`` to ``/login.htm`` or ``401``.

Usage::

    web = PhoneWeb("192.0.2.11", username="admin", password=secret)
    web.reboot()                                  # WebAnswer: status 200

Every failure is one ``PhoneError`` line naming the phone's URL; the password (and its
base64 form) never appears in an error or a log. Connections are made in the calling
thread, so in its network namespace.
"""

from __future__ import annotations

import base64
import http.client
import logging
import ssl
import time
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlencode

from framework.errors import HilError
from framework.phone.errors import PhoneError

log = logging.getLogger(__name__)

LOGIN = "/login.cgi"
REBOOT = "/mainform.cgi/reboot.htm"
RESET = "/mainform.cgi/reset.htm"
SESSION_COOKIE = "SESSIONID"


@dataclass(frozen=True)
class WebAnswer:
    """What the phone answered to an action: when it was asked (``time.time()``), when it
    answered, the HTTP status (None: it closed the connection without an answer, as a
    phone restarting at once may)."""

    action: str
    sent_at: float
    answered_at: float
    status: int | None


class PhoneWeb:
    """A client of one phone's web interface (``http`` or ``https`` on ``port``, default
    80/443). ``verify_tls`` False accepts the phone's self-signed certificate (the rig
    says so per phone)."""

    def __init__(self, host: str, *, username: str, password: str, scheme: str = "http",
                 port: int | None = None, verify_tls: bool = False,
                 timeout: float = 10.0) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"scheme must be http or https, not {scheme!r}")
        self.host, self.scheme = host, scheme
        self.port = port or (443 if scheme == "https" else 80)
        self.username = username
        self._password = password
        self.verify_tls = verify_tls
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"PhoneWeb({self.url}, user {self.username!r})"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    # --- the actions -------------------------------------------------------------------------
    def login(self) -> str:
        """Log in; returns the session cookie (``SESSIONID=...``)."""
        secret = base64.b64encode(self._password.encode()).decode()
        status, headers, body = self._post(LOGIN, {"user": self.username, "psw": secret},
                                           what="login")
        if status != 200:
            raise PhoneError(f"web login refused by {self.url}: HTTP {status} "
                             f"(as {self.username!r})")
        cookie = SimpleCookie()
        for value in headers.get_all("Set-Cookie") or []:
            try:
                cookie.load(value)
            except CookieError:
                continue
        if SESSION_COOKIE not in cookie or not cookie[SESSION_COOKIE].value:
            said = " (it says Login failed)" if b"login failed" in body.lower() else ""
            raise PhoneError(f"web login refused by {self.url}: no session cookie as "
                             f"{self.username!r}{said}: check the rig's web credentials")
        return f"{SESSION_COOKIE}={cookie[SESSION_COOKIE].value}"

    def reboot(self) -> WebAnswer:
        """Restart the phone (``reboot.htm``) after a fresh login."""
        return self._action("reboot", REBOOT, {})

    def reset_to_defaults(self) -> WebAnswer:
        """Factory defaults (``reset.htm``, ``CONFIG=2``), after a fresh login; the phone
        restarts with them."""
        return self._action("factory defaults", RESET, {"CONFIG": "2"})

    def _action(self, what: str, path: str, form: dict[str, str]) -> WebAnswer:
        cookie = self.login()
        sent_at = time.time()
        try:
            status, headers, _ = self._post(path, form, what=what, cookie=cookie)
        except _NoAnswer:
            log.info("%s: %s: the connection closed without an answer (restarting?)",
                     self.url, what)
            return WebAnswer(what, sent_at, time.time(), None)
        if status in (301, 302, 303, 307, 401, 403):
            where = headers.get("Location")
            raise PhoneError(f"web {what} refused by {self.url}: HTTP {status}"
                             f"{f' to {where}' if where else ''} (the session was not "
                             f"accepted)")
        if status != 200:
            raise PhoneError(f"web {what} failed at {self.url}{path}: HTTP {status}")
        log.info("%s: %s accepted (HTTP %d)", self.url, what, status)
        return WebAnswer(what, sent_at, time.time(), status)

    # --- HTTP ----------------------------------------------------------------------------------
    def _connection(self) -> http.client.HTTPConnection:
        if self.scheme == "http":
            return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        context = ssl.create_default_context()
        if not self.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                           context=context)

    def _post(self, path: str, form: dict[str, str], *, what: str, cookie: str | None = None
              ) -> tuple[int, http.client.HTTPMessage, bytes]:
        body = urlencode(form).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "User-Agent": "hil-lab"}
        if cookie:
            headers["Cookie"] = cookie
        conn = self._connection()
        sent = False
        try:
            conn.request("POST", path, body=body, headers=headers)
            sent = True
            response = conn.getresponse()
            data = response.read()
            return response.status, response.headers, data
        except (http.client.RemoteDisconnected, ConnectionResetError) as exc:
            if sent and path != LOGIN:
                raise _NoAnswer from None
            raise PhoneError(self._failed(what, exc)) from None
        except ssl.SSLError as exc:
            raise PhoneError(self._failed(what, exc, " (TLS; the rig's web.verify_tls "
                                                     f"is {self.verify_tls})")) from None
        except (OSError, http.client.HTTPException) as exc:
            raise PhoneError(self._failed(what, exc)) from None
        finally:
            conn.close()

    def _failed(self, what: str, exc: BaseException, hint: str = "") -> str:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        text = f"web {what} at {self.url}: {reason}{hint}"
        for secret in (self._password, base64.b64encode(self._password.encode()).decode()):
            if secret:
                text = text.replace(secret, "********")
        return text.splitlines()[0]


class _NoAnswer(HilError):
    """The request went out and the connection closed without a response."""
