"""TFTP on the wire: curl and BusyBox tftp fetch from our fbtftp-based server."""

from __future__ import annotations

import socket

import pytest

from framework.services import Outcome
from tests.services.conftest import CLIENT_IPS, CLIENT_MACS, LAB_DNS_NAME, SERVER, Wire

pytestmark = pytest.mark.netns

IMAGE = bytes(range(256)) * 23 + b"tail"  # 5892 bytes: not a multiple of any block size


def test_curl_fetch_is_served_and_recorded_with_options(wire: Wire, tmp_path) -> None:
    wire.content.serve("/440HD.img", IMAGE)
    out = tmp_path / "fw.img"

    result = wire.curl(0, "--tftp-blksize", "1024", "-o", str(out),
                       f"tftp://{SERVER}/440HD.img")

    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == IMAGE
    rec = wire.wait(lambda r: r.protocol == "tftp", "the TFTP request of client 0")
    assert rec.url == f"tftp://{SERVER}/440HD.img"
    assert (rec.path, rec.host, rec.method) == ("440HD.img", SERVER, "RRQ")
    assert rec.outcome == Outcome.SERVED and rec.status is None
    assert rec.bytes_sent == len(IMAGE)
    assert (rec.client_ip, rec.client_mac) == (CLIENT_IPS[0], CLIENT_MACS[0])
    assert rec.details["mode"] == "octet"
    assert rec.details["blksize"] == 1024
    assert rec.details["tsize"] == 0  # curl asks for the size with tsize=0 ...
    assert rec.details["options_acked"]["tsize"] == str(len(IMAGE))  # ... and is told it


def test_busybox_client_with_block_size(wire: Wire) -> None:
    wire.content.serve("/00908f000001.cfg", b"system/type=440HD\n" * 100)

    result = wire.run(0, ["busybox", "tftp", "-g", "-b", "1428", "-r", "00908f000001.cfg",
                          "-l", "/dev/null", SERVER])

    assert result.returncode == 0, result.stderr
    rec = wire.wait(lambda r: r.path == "00908f000001.cfg", "the busybox RRQ")
    assert rec.outcome == Outcome.SERVED and rec.bytes_sent == 1800
    assert rec.details["blksize"] == 1428
    assert rec.details["options_acked"]["blksize"] == "1428"


def test_missing_file_is_tftp_error_1_on_the_wire(wire: Wire) -> None:
    result = wire.curl(0, "-o", "/dev/null", f"tftp://{SERVER}/missing.img")

    assert result.returncode == 68  # curl: "TFTP: File Not Found"
    rec = wire.wait(lambda r: r.path == "missing.img", "the RRQ for the missing file")
    assert rec.outcome == Outcome.NOT_FOUND and rec.status == 1 and rec.bytes_sent == 0


def test_cut_policy_stops_after_the_last_whole_block(wire: Wire, tmp_path) -> None:
    wire.content.cut("/cut.img", 1500, IMAGE)
    out = tmp_path / "cut.img"

    result = wire.curl(0, "-o", str(out), f"tftp://{SERVER}/cut.img")

    assert result.returncode != 0  # the client sees a failed transfer, not a short file
    rec = wire.wait(lambda r: r.path == "cut.img", "the RRQ of the cut transfer")
    assert rec.outcome == Outcome.CUT
    assert rec.bytes_sent == 1024  # two 512-byte blocks fit in 1500 bytes, the third does not
    assert rec.details["cut_after"] == 1500
    assert out.read_bytes() == IMAGE[:1024]


def test_host_is_the_name_the_client_resolved(wire: Wire) -> None:
    wire.content.serve("/440HD.img", IMAGE)

    result = wire.curl(1, "-o", "/dev/null", f"tftp://{LAB_DNS_NAME}/440HD.img")

    assert result.returncode == 0, result.stderr
    rec = wire.wait(lambda r: r.protocol == "tftp", "the TFTP request by name")
    assert rec.host == LAB_DNS_NAME
    assert rec.url == f"tftp://{LAB_DNS_NAME}/440HD.img"
    assert rec.client_ip == CLIENT_IPS[1]


def test_garbage_and_write_requests_are_answered_logged_and_survived(wire: Wire) -> None:
    wire.content.serve("/440HD.img", IMAGE)
    with wire.client(0).entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(5)
        sock.sendto(b"\x07", (SERVER, 69))
        reply_short, _ = sock.recvfrom(600)
        sock.sendto(b"\x00\x01no-terminator", (SERVER, 69))
        reply_unterminated, _ = sock.recvfrom(600)
        sock.sendto(b"\x00\x02upload.bin\x00octet\x00", (SERVER, 69))
        reply_wrq, _ = sock.recvfrom(600)

    assert reply_short[:4] == b"\x00\x05\x00\x04"  # ERROR, illegal operation
    assert reply_unterminated[:4] == b"\x00\x05\x00\x04"
    assert reply_wrq[:4] == b"\x00\x05\x00\x02"  # ERROR, access violation
    result = wire.curl(0, "-o", "/dev/null", f"tftp://{SERVER}/440HD.img")
    assert result.returncode == 0, result.stderr  # still serving

    bad = [r for r in wire.records(protocol="tftp") if r.outcome != Outcome.SERVED]
    assert [r.method for r in bad] == ["?", "RRQ", "WRQ"]
    assert "too short" in bad[0].details["error"]
    assert "NUL-terminated" in bad[1].details["error"]
    assert bad[2].outcome == Outcome.DENIED and bad[2].path == "upload.bin"
    wire.wait(lambda r: r.outcome == Outcome.SERVED, "the good RRQ after the garbage")


def test_a_client_breaking_the_transfer_yields_an_error_record(wire: Wire) -> None:
    wire.content.serve("/440HD.img", IMAGE)
    with wire.client(0).entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(5)
        sock.sendto(b"\x00\x01440HD.img\x00octet\x00", (SERVER, 69))
        first_block, transfer_port = sock.recvfrom(600)
        sock.sendto(b"\x04", transfer_port)  # a 1-byte "ACK": not TFTP

    assert first_block[:4] == b"\x00\x03\x00\x01"  # DATA block 1
    rec = wire.wait(lambda r: r.path == "440HD.img", "the broken transfer's record")
    assert rec.outcome == Outcome.ERROR and rec.bytes_sent == 512
    assert "unpack" in rec.details["error"]  # the transfer process's failure, reported


@pytest.mark.parametrize("parallel", [
    pytest.param(16, id="16-transfers"),
    pytest.param(200, id="200-transfers", marks=pytest.mark.slow),
])
def test_concurrent_transfers_each_get_one_record(wire: Wire, parallel: int) -> None:
    wire.content.serve("/440HD.img", IMAGE)
    script = (f"for i in $(seq {parallel}); do busybox tftp -g -b 1024 -r 440HD.img "
              f"-l /dev/null {SERVER} & done; wait")

    result = wire.run(0, ["sh", "-c", script], timeout=120)

    assert result.returncode == 0, result.stderr
    records = wire.wait_count(lambda r: r.protocol == "tftp", parallel,
                              "one record per transfer", timeout=30)
    assert len(wire.records(protocol="tftp")) == parallel
    assert all(r.outcome == Outcome.SERVED and r.bytes_sent == len(IMAGE) for r in records)


def test_a_retransmitted_rrq_does_not_start_a_second_transfer(wire: Wire) -> None:
    wire.content.serve("/440HD.img", IMAGE)
    rrq = b"\x00\x01440HD.img\x00octet\x00"
    with wire.client(0).entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.settimeout(5)
        sock.sendto(rrq, (SERVER, 69))
        sock.sendto(rrq, (SERVER, 69))  # as a client does when our answer is slow
        received = b""
        senders = set()
        while True:  # a plain RFC 1350 lock-step read
            packet, transfer = sock.recvfrom(600)
            senders.add(transfer)
            assert packet[:2] == b"\x00\x03", packet
            received += packet[4:]
            sock.sendto(b"\x00\x04" + packet[2:4], transfer)
            if len(packet) < 516:
                break

    assert received == IMAGE
    assert len(senders) == 1  # a second transfer would send its DATA from another port
    rec = wire.wait(lambda r: r.path == "440HD.img", "the transfer's record")
    assert rec.outcome == Outcome.SERVED and rec.details["duplicate_rrqs"] == 1
    assert len(wire.records(protocol="tftp")) == 1
