"""LabCA: generated once, cached, and trusted by a stdlib TLS client."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest

from framework.services import LabCA


def test_the_ca_is_generated_once_and_reused(tmp_path: Path) -> None:
    first = LabCA(tmp_path)
    second = LabCA(tmp_path)

    assert first.ca_pem_path == tmp_path / "lab-ca" / "ca.pem"
    assert first.ca_pem == second.ca_pem
    key = tmp_path / "lab-ca" / "ca.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_issued_certificate_validates_for_its_names_and_ip(tmp_path: Path) -> None:
    ca = LabCA(tmp_path)
    server_ctx = ca.server_context(["Audiocodes.com", "127.0.0.1"])
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls:
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        client_ctx = ca.client_context()
        with socket.create_connection(("127.0.0.1", port)) as raw, \
                client_ctx.wrap_socket(raw, server_hostname="audiocodes.com") as tls:
            assert tls.recv(2) == b"ok"
    finally:
        thread.join(5)
        listener.close()
    cert = ca.issue(["Audiocodes.com", "127.0.0.1"])
    assert cert.names == ("127.0.0.1", "audiocodes.com")
    assert ca.issue(["127.0.0.1", "AUDIOCODES.com."]) == cert  # reused, not reissued


def test_a_wrong_name_fails_validation(tmp_path: Path) -> None:
    ca = LabCA(tmp_path)
    server_ctx = ca.server_context(["prov.example.test"])
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            server_ctx.wrap_socket(conn, server_side=True).close()
        except (ssl.SSLError, OSError):
            conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with socket.create_connection(listener.getsockname()) as raw, \
                pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
            ca.client_context().wrap_socket(raw, server_hostname="other.example.test")
    finally:
        thread.join(5)
        listener.close()


def test_an_unusable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="cannot create the lab CA directory"):
        LabCA(blocker)


def test_a_corrupt_cached_ca_says_how_to_recover(tmp_path: Path) -> None:
    LabCA(tmp_path)
    (tmp_path / "lab-ca" / "ca.pem").write_text("not a certificate")

    with pytest.raises(ValueError, match="delete that directory to generate a new one"):
        LabCA(tmp_path)
