"""FTP on the wire: curl (and a raw control connection) against our pyftpdlib server."""

from __future__ import annotations

import logging
import socket

import pytest

from framework.services import Outcome
from tests.services.conftest import (
    CLIENT_MACS,
    FTP_PASSWORD,
    FTP_USER,
    LAB_DNS_NAME,
    SERVER,
    Wire,
)

pytestmark = pytest.mark.netns

IMAGE = bytes(range(256)) * 300  # 76800 bytes


def test_anonymous_fetch_by_name_is_recorded_with_size_and_retr(wire: Wire, tmp_path) -> None:
    wire.content.serve("/440HD.img", IMAGE)
    out = tmp_path / "fw.img"

    result = wire.curl(0, "-o", str(out), f"ftp://{LAB_DNS_NAME}/440HD.img")

    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == IMAGE
    retr = wire.wait(lambda r: r.method == "RETR", "the RETR")
    assert retr.url == f"ftp://{LAB_DNS_NAME}/440HD.img"
    assert (retr.host, retr.path, retr.status) == (LAB_DNS_NAME, "/440HD.img", 226)
    assert retr.outcome == Outcome.SERVED and retr.bytes_sent == len(IMAGE)
    assert retr.details["user"] == "anonymous" and retr.client_mac == CLIENT_MACS[0]
    methods = [r.method for r in wire.records(protocol="ftp")]
    assert methods[:3] == ["LOGIN", "SIZE", "RETR"]


def test_named_user_in_a_subdirectory(wire: Wire) -> None:
    wire.content.serve("/420HD/420HD.img", b"firmware")

    result = wire.curl(0, "-o", "/dev/null",
                       f"ftp://{FTP_USER}:{FTP_PASSWORD}@{SERVER}/420HD/420HD.img")

    assert result.returncode == 0, result.stderr
    retr = wire.wait(lambda r: r.method == "RETR", "the RETR in the subdirectory")
    assert retr.url == f"ftp://{SERVER}/420HD/420HD.img"  # the user is a detail, not in the URL
    assert retr.details["user"] == FTP_USER
    cwd = wire.wait(lambda r: r.method == "CWD", "the CWD into 420HD")
    assert cwd.path == "/420HD" and cwd.outcome == Outcome.SERVED


def test_missing_file_gets_size_but_no_retr(wire: Wire) -> None:
    wire.content.serve("/present.img", b"here")

    # One curl, one control connection: the second URL's commands come after the first's.
    result = wire.curl(0, "-o", "/dev/null", f"ftp://{SERVER}/missing.img",
                       "-o", "/dev/null", f"ftp://{SERVER}/present.img")

    assert result.returncode == 0  # curl reports the last transfer
    assert "does not exist" in result.stderr
    wire.wait(lambda r: r.method == "RETR" and r.path == "/present.img", "the later RETR")
    about_missing = [r for r in wire.records(protocol="ftp") if r.path == "/missing.img"]
    assert [(r.method, r.outcome, r.status) for r in about_missing] == [
        ("SIZE", Outcome.NOT_FOUND, 550)]


def test_cut_policy_aborts_the_data_connection(wire: Wire) -> None:
    wire.content.cut("/440HD.img", 30000, IMAGE)

    result = wire.curl(0, "-o", "/dev/null", f"ftp://{SERVER}/440HD.img")

    assert result.returncode == 18  # partial file
    retr = wire.wait(lambda r: r.method == "RETR", "the cut RETR")
    assert retr.outcome == Outcome.CUT and retr.status == 426 and retr.bytes_sent == 30000


def test_wrong_password_is_denied_and_no_password_is_ever_kept(
        wire: Wire, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wire.content.serve("/a.cfg", "a")

    denied = wire.curl(0, "-o", "/dev/null", f"ftp://{FTP_USER}:Wrong-pass-91@{SERVER}/a.cfg")
    allowed = wire.curl(0, "-o", "/dev/null", f"ftp://{FTP_USER}:{FTP_PASSWORD}@{SERVER}/a.cfg")

    assert denied.returncode == 67 and allowed.returncode == 0  # 67: login denied
    wire.wait(lambda r: r.method == "RETR", "the RETR after the good login")
    logins = [r for r in wire.records(protocol="ftp") if r.method == "LOGIN"]
    assert [(r.outcome, r.details["user"]) for r in logins] == [
        (Outcome.DENIED, FTP_USER), (Outcome.SERVED, FTP_USER)]
    evidence = repr(wire.records()) + wire.jsonl.read_text() + caplog.text
    assert FTP_PASSWORD not in evidence and "Wrong-pass-91" not in evidence


def test_upload_listing_and_unknown_commands(wire: Wire) -> None:
    wire.content.serve("/fw/440HD.img", b"x" * 10)
    wire.content.serve("/00908F000001.cfg", b"y")

    listing = wire.curl(0, f"ftp://{SERVER}/")
    upload = wire.curl(0, "-T", "/etc/hostname", f"ftp://{SERVER}/up.txt")
    with wire.client(0).entered():
        sock = socket.create_connection((SERVER, 21), timeout=5)
    with sock, sock.makefile("rwb") as ctl:
        banner = ctl.readline()
        replies = []
        for line in (b"USER anonymous", b"PASS lab@", b"FROB now", b"\xff\xfe junk", b"QUIT"):
            ctl.write(line + b"\r\n")
            ctl.flush()
            replies.append(ctl.readline())

    assert listing.returncode == 0
    assert "00908F000001.cfg" in listing.stdout and "fw" in listing.stdout
    assert upload.returncode == 25  # read-only: upload refused
    assert banner.startswith(b"220") and [r[:3] for r in replies] == [
        b"331", b"230", b"500", b"500", b"221"]
    stor = wire.wait(lambda r: r.method == "STOR", "the refused STOR")
    assert stor.outcome == Outcome.DENIED and stor.status == 550
    unknown = [r for r in wire.records(protocol="ftp") if r.status == 500]
    assert next(r.method for r in unknown) == "FROB"
    assert all(r.outcome == Outcome.ERROR and "unknown command" in r.details["error"]
               for r in unknown) and len(unknown) == 2


def test_a_retr_whose_data_connection_never_opens_is_still_recorded(wire: Wire) -> None:
    wire.content.serve("/440HD.img", IMAGE)
    with wire.client(0).entered():
        sock = socket.create_connection((SERVER, 21), timeout=5)
    with sock, sock.makefile("rwb") as ctl:
        ctl.readline()
        for line in (b"USER anonymous", b"PASS lab@", b"TYPE I", b"PASV", b"RETR 440HD.img"):
            ctl.write(line + b"\r\n")
            ctl.flush()
            reply = ctl.readline()
    # the client hangs up instead of connecting to the passive port

    assert reply.startswith(b"150")
    retr = wire.wait(lambda r: r.method == "RETR", "the RETR of the abandoned session")
    assert retr.outcome == Outcome.ERROR and retr.bytes_sent == 0
    assert "before the data transfer" in retr.details["error"]
