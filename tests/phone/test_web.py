"""The phone's web interface client against a scripted web phone (http.server) on loopback:
login with the base64 password, reboot, factory defaults, refused logins and sessions,
https with a self-signed certificate, and errors as one line that never shows the password."""

from __future__ import annotations

import base64
import logging
import socket
from pathlib import Path

import pytest
import trustme

from framework.phone.errors import PhoneError
from framework.phone.web import PhoneWeb
from tests.phone.web_peer import WebPhone, web_phone

PASSWORD = "Web-pw-8841"
B64 = base64.b64encode(PASSWORD.encode()).decode()


def client(phone: WebPhone, password: str = PASSWORD, **kw: object) -> PhoneWeb:
    return PhoneWeb("127.0.0.1", username="admin", password=password, port=phone.port,
                    **kw)  # type: ignore[arg-type]


def test_reboot_logs_in_with_the_base64_password_then_posts_with_the_cookie() -> None:
    rebooted = []
    with web_phone(WebPhone(password=PASSWORD, on_reboot=lambda: rebooted.append(1))) as phone:
        answer = client(phone).reboot()
    assert answer.status == 200 and answer.action == "reboot" and rebooted == [1]
    (_, login, form, _), (_, path, _, cookie) = phone.requests
    assert login == "/login.cgi" and form == {"user": ["admin"], "psw": [B64]}
    assert path == "/mainform.cgi/reboot.htm" and cookie is not None
    assert cookie.removeprefix("SESSIONID=") in phone.sessions


def test_factory_defaults_post_config_2() -> None:
    reset = []
    with web_phone(WebPhone(password=PASSWORD, on_reset=lambda: reset.append(1))) as phone:
        answer = client(phone).reset_to_defaults()
    assert answer.status == 200 and reset == [1]
    assert phone.requests[-1][1:3] == ("/mainform.cgi/reset.htm", {"CONFIG": ["2"]})


def test_a_refused_login_is_one_line_without_the_password(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with web_phone(WebPhone(password="other")) as phone, \
            pytest.raises(PhoneError) as err:
        client(phone).reboot()
    assert str(err.value) == (f"web login refused by http://127.0.0.1:{phone.port}: no "
                              f"session cookie as 'admin' (it says Login failed): check the "
                              f"rig's web credentials")
    assert [r[1] for r in phone.requests] == ["/login.cgi"]  # nothing else was asked
    for text in (str(err.value), caplog.text):
        assert PASSWORD not in text and B64 not in text


def test_a_session_the_phone_does_not_accept_is_refused() -> None:
    with web_phone(WebPhone(password=PASSWORD, accept_sessions=False)) as phone, \
            pytest.raises(PhoneError) as err:
        client(phone).reset_to_defaults()
    assert str(err.value) == (f"web factory defaults refused by http://127.0.0.1:"
                              f"{phone.port}: HTTP 302 to /login.htm (the session was not "
                              f"accepted)")


def test_a_phone_that_restarts_before_answering_is_not_an_error() -> None:
    with web_phone(WebPhone(password=PASSWORD, hang_up_on_reboot=True)) as phone:
        answer = client(phone).reboot()
    assert answer.status is None


def test_nothing_listening_is_one_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        web = PhoneWeb("127.0.0.1", username="admin", password=PASSWORD, port=port)
        with pytest.raises(PhoneError) as err:
            web.reboot()
    assert str(err.value) == f"web login at http://127.0.0.1:{port}: Connection refused"
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_https_with_a_self_signed_certificate(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("phone.invalid")  # a name the client never uses
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
    cert.private_key_pem.write_to_path(str(key))
    with web_phone(WebPhone(password=PASSWORD), tls=(chain, key)) as phone:
        assert client(phone, scheme="https").reboot().status == 200
        with pytest.raises(PhoneError) as err:
            client(phone, scheme="https", verify_tls=True).reboot()
    message = str(err.value)
    assert message.startswith(f"web login at https://127.0.0.1:{phone.port}: ")
    assert "CERTIFICATE_VERIFY_FAILED" in message
    assert message.endswith("(TLS; the rig's web.verify_tls is True)")
    assert "\n" not in message
