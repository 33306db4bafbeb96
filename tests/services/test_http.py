"""HTTP and HTTPS on the wire: curl against our recording servers."""

from __future__ import annotations

import socket

import pytest

from framework.services import Outcome
from tests.services.conftest import CLIENT_IPS, CLIENT_MACS, LAB_DNS_NAME, SERVER, Wire

pytestmark = pytest.mark.netns

IMAGE = bytes(range(256)) * 40  # 10240 bytes
USER_AGENT = "AUDC-IPPhone/2.2.8.61 (440HDG-Rev0; 00908F000001)"


def test_get_records_host_header_user_agent_and_bytes(wire: Wire, tmp_path) -> None:
    wire.content.serve("/440HD.img", IMAGE)
    out = tmp_path / "fw.img"

    result = wire.curl(0, "-A", USER_AGENT, "-o", str(out), f"http://{LAB_DNS_NAME}/440HD.img")

    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == IMAGE
    rec = wire.wait(lambda r: r.protocol == "http" and r.method == "GET", "the HTTP GET")
    assert rec.url == f"http://{LAB_DNS_NAME}/440HD.img"
    assert (rec.host, rec.path, rec.status) == (LAB_DNS_NAME, "/440HD.img", 200)
    assert rec.outcome == Outcome.SERVED and rec.bytes_sent == len(IMAGE)
    assert rec.user_agent == USER_AGENT
    assert (rec.client_ip, rec.client_mac) == (CLIENT_IPS[0], CLIENT_MACS[0])


def test_host_header_case_and_port_are_kept(wire: Wire) -> None:
    wire.content.serve("/cfg/00908F000001.cfg", "system/type=440HD\n")

    result = wire.curl(0, "-o", "/dev/null", "-H", "Host: AudioCodes.COM:80",
                       f"http://{SERVER}/cfg/00908F000001.cfg")

    assert result.returncode == 0, result.stderr
    rec = wire.wait(lambda r: r.protocol == "http", "the GET with an explicit Host")
    assert rec.host == "AudioCodes.COM"
    assert rec.url == "http://AudioCodes.COM:80/cfg/00908F000001.cfg"
    assert rec.details["host_header"] == "AudioCodes.COM:80"


def test_not_found_and_range(wire: Wire, tmp_path) -> None:
    wire.content.serve("/440HD.img", IMAGE)
    out = tmp_path / "part"

    missing = wire.curl(0, "-f", "-o", "/dev/null", f"http://{SERVER}/420HD.img")
    ranged = wire.curl(0, "-r", "100-199", "-o", str(out), f"http://{SERVER}/440HD.img")

    assert missing.returncode == 22  # curl -f: HTTP error >= 400
    assert ranged.returncode == 0 and out.read_bytes() == IMAGE[100:200]
    lost = wire.wait(lambda r: r.path == "/420HD.img", "the GET of the missing image")
    assert lost.outcome == Outcome.NOT_FOUND and lost.status == 404
    part = wire.wait(lambda r: r.status == 206, "the ranged GET")
    assert part.details["range"] == "bytes=100-199" and part.bytes_sent == 100


def test_cut_policy_closes_the_connection_mid_body(wire: Wire) -> None:
    wire.content.cut("/440HD.img", 4000, IMAGE)

    result = wire.curl(0, "-o", "/dev/null", f"http://{SERVER}/440HD.img")

    assert result.returncode == 18  # curl: partial file (announced length not delivered)
    rec = wire.wait(lambda r: r.path == "/440HD.img", "the cut GET")
    assert rec.outcome == Outcome.CUT and rec.status == 200
    assert rec.bytes_sent == 4000 and rec.details["content_length"] == len(IMAGE)


def test_https_records_sni_and_validates_against_the_lab_ca(wire: Wire) -> None:
    wire.content.serve("/440HD.img", IMAGE)
    ca = str(wire.services.ca_pem_path)

    result = wire.curl(1, "--cacert", ca, "-A", USER_AGENT, "-o", "/dev/null",
                       f"https://{LAB_DNS_NAME}/440HD.img")

    assert result.returncode == 0, result.stderr
    rec = wire.wait(lambda r: r.protocol == "https", "the HTTPS GET")
    assert rec.url == f"https://{LAB_DNS_NAME}/440HD.img"
    assert rec.host == LAB_DNS_NAME
    assert rec.details["sni"] == LAB_DNS_NAME.lower()  # curl lowercases SNI (LAB-NOTES.md)
    assert rec.outcome == Outcome.SERVED and rec.bytes_sent == len(IMAGE)
    assert rec.client_mac == CLIENT_MACS[1]


def test_https_name_added_at_runtime_gets_a_valid_certificate(wire: Wire) -> None:
    wire.content.serve("/x.cfg", "x")
    ca = str(wire.services.ca_pem_path)

    result = wire.curl(0, "--cacert", ca, "--resolve", f"prov.example.test:443:{SERVER}",
                       "-o", "/dev/null", "https://prov.example.test/x.cfg")

    assert result.returncode == 0, result.stderr
    rec = wire.wait(lambda r: r.protocol == "https", "the HTTPS GET to a new name")
    assert rec.details["sni"] == "prov.example.test" and rec.outcome == Outcome.SERVED


def test_https_rejected_by_the_client_is_recorded_as_a_failed_handshake(wire: Wire) -> None:
    result = wire.curl(0, "-o", "/dev/null", f"https://{LAB_DNS_NAME}/440HD.img")  # no --cacert

    assert result.returncode == 60  # curl: certificate not trusted
    rec = wire.wait(lambda r: r.protocol == "https", "the refused TLS handshake")
    assert rec.method == "TLS" and rec.outcome == Outcome.ERROR
    assert rec.details["sni"] == LAB_DNS_NAME.lower()
    assert "unknown ca" in rec.details["error"].lower()


def test_broken_request_and_refused_method_are_recorded_and_survived(wire: Wire) -> None:
    wire.content.serve("/ok.cfg", "ok")
    with wire.client(0).entered():
        sock = socket.create_connection((SERVER, 80), timeout=5)
    with sock:
        sock.sendall(b"\x16\x03garbage request line\r\n\r\n")
        reply = sock.recv(200)
    wire.curl(0, "-d", "x=1", "-H", "Authorization: Basic cGhvbmU6c2VjcmV0",
                     f"http://{SERVER}/ok.cfg")
    after = wire.curl(0, f"http://{SERVER}/ok.cfg")

    assert reply.startswith(b"HTTP/1.1 400")
    assert after.returncode == 0 and after.stdout == "ok"  # still serving
    broken = wire.wait(lambda r: r.status == 400, "the record of the broken request")
    assert broken.outcome == Outcome.ERROR and "garbage request line" in broken.details["request_line"]
    refused = wire.wait(lambda r: r.method == "POST", "the POST")
    assert refused.status == 405 and refused.outcome == Outcome.DENIED
    assert refused.details["authorization_scheme"] == "Basic"
    assert "cGhvbmU6c2VjcmV0" not in repr(refused)
