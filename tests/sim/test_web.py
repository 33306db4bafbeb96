"""The virtual phone's web interface (framework/sim/web.py) on loopback, driven by curl:
the login page, login.cgi with the base64 password, the session cookie, reboot.htm and
reset.htm CONFIG=2, and what happens without a session."""

from __future__ import annotations

import base64
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from framework.sim.web import PhoneWebServer

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
PASSWORD = "s3cr:t ü~~~"   # base64 czNjcjp0IMO8fn5+: a "+" to encode


@dataclass
class FakePhone:
    model: str = "440HD"
    actions: list[str] = field(default_factory=list)
    acted: threading.Event = field(default_factory=threading.Event)
    server: PhoneWebServer | None = None

    def restart(self) -> None:
        self.actions.append("restart")
        if self.server is not None:   # as the phone does: the restart stops the server
            self.server.stop()
        self.acted.set()

    def reset_to_defaults(self) -> None:
        self.actions.append("reset")
        self.acted.set()


@pytest.fixture
def web() -> Iterator[tuple[PhoneWebServer, FakePhone, str]]:
    phone = FakePhone()
    server = PhoneWebServer(phone, "admin", lambda: PASSWORD)
    phone.server = server
    server.start("127.0.0.1", 0)
    yield server, phone, f"http://127.0.0.1:{server.port}"
    server.stop()


def curl(*args: str) -> str:
    proc = subprocess.run(["curl", "-s", "-S", "-i", "-m", "5", *args], capture_output=True,
                          text=True, timeout=15)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def login(base: str, jar: Path, password: str = PASSWORD, user: str = "admin") -> str:
    psw = base64.b64encode(password.encode()).decode()
    return curl("-c", str(jar), "--data-urlencode", f"user={user}", "--data-urlencode",
                f"psw={psw}", f"{base}/login.cgi")


def test_login_page_and_unknown_pages(web: tuple[PhoneWebServer, FakePhone, str]) -> None:
    _, _, base = web
    page = curl(f"{base}/")
    assert page.startswith("HTTP/1.1 200 ") and 'action="/login.cgi"' in page
    assert curl(f"{base}/status.htm").startswith("HTTP/1.1 404 ")
    assert curl("-X", "POST", f"{base}/mainform.cgi/other.htm").startswith("HTTP/1.1 404 ")


@pytest.mark.parametrize(("user", "password"), [
    ("admin", "wrong"), ("root", PASSWORD), ("admin", ""),
])
def test_a_refused_login_sets_no_cookie(web: tuple[PhoneWebServer, FakePhone, str],
                                        tmp_path: Path, user: str, password: str) -> None:
    _, _, base = web
    answer = login(base, tmp_path / "jar", password, user)
    assert answer.startswith("HTTP/1.1 200 ") and "Login failed" in answer
    assert "set-cookie" not in answer.lower()


def test_base64_sent_without_form_encoding_is_accepted(
        web: tuple[PhoneWebServer, FakePhone, str]) -> None:
    """Scripts that paste ``psw=<base64>`` unencoded send "+" (a space once decoded)."""
    _, _, base = web
    raw = base64.b64encode(PASSWORD.encode()).decode()
    assert "+" in raw
    assert "Set-Cookie: SESSIONID=" in curl("-d", f"user=admin&psw={raw}", f"{base}/login.cgi")


def test_psw_that_is_not_base64_is_refused(web: tuple[PhoneWebServer, FakePhone, str]) -> None:
    _, _, base = web
    answer = curl("-d", f"user=admin&psw={PASSWORD}", f"{base}/login.cgi")
    assert "Login failed" in answer and "set-cookie" not in answer.lower()


def test_without_a_session_nothing_happens(web: tuple[PhoneWebServer, FakePhone, str]) -> None:
    _, phone, base = web
    for page in ("reboot.htm", "reset.htm"):
        for cookie in ((), ("-b", "SESSIONID=forged"), ("-b", "SESSIONID=")):
            answer = curl(*cookie, "-d", "CONFIG=2", f"{base}/mainform.cgi/{page}")
            assert answer.startswith("HTTP/1.1 302 ") and "Location: /login.htm" in answer
    assert phone.actions == []


def test_reset_needs_config_2_then_restores_defaults(
        web: tuple[PhoneWebServer, FakePhone, str], tmp_path: Path) -> None:
    _, phone, base = web
    jar = tmp_path / "jar"
    assert "Set-Cookie: SESSIONID=" in login(base, jar)
    assert curl("-b", str(jar), "-d", "CONFIG=1", f"{base}/mainform.cgi/reset.htm") \
        .startswith("HTTP/1.1 400 ")
    assert phone.actions == []
    assert curl("-b", str(jar), "-d", "CONFIG=2", f"{base}/mainform.cgi/reset.htm") \
        .startswith("HTTP/1.1 200 ")
    assert phone.acted.wait(5) and phone.actions == ["reset"]


def test_reboot_answers_200_then_restarts_and_sessions_end(
        web: tuple[PhoneWebServer, FakePhone, str], tmp_path: Path) -> None:
    server, phone, base = web
    jar = tmp_path / "jar"
    login(base, jar)
    assert curl("-b", str(jar), "-X", "POST", f"{base}/mainform.cgi/reboot.htm") \
        .startswith("HTTP/1.1 200 ")
    assert phone.acted.wait(5) and phone.actions == ["restart"]
    port = int(base.rsplit(":", 1)[1])
    assert server.port is None   # the restart stopped the server and freed its port:
    server.start("127.0.0.1", port)   # the next boot listens there again, old sessions gone
    answer = curl("-b", str(jar), "-X", "POST",
                  f"http://127.0.0.1:{server.port}/mainform.cgi/reboot.htm")
    assert answer.startswith("HTTP/1.1 302 ")
