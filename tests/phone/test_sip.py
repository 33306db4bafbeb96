"""The check-sync NOTIFY client against SIPp (an independent SIP stack) acting as the phone,
on loopback: 200 accepted, 489 refused, 100 then 200, and a silent address that proves the
RFC 3261 retransmission schedule and Timer F; responses of other transactions are ignored."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from framework.phone.errors import PhoneError
from framework.phone.sip import _parse_response, send_check_sync
from tests.rig.waiting import wait_until

SCENARIOS = Path(__file__).with_name("sipp")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sipp_uas(scenario: str, tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """SIPp running ``scenario`` once as the phone on 127.0.0.1; yields (port, process)."""
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed (Debian package sip-tester)")
    port = free_udp_port()
    out = (tmp_path / "sipp.out").open("wb")
    proc = subprocess.Popen(
        ["sipp", "-sf", str(SCENARIOS / scenario), "-i", "127.0.0.1", "-p", str(port),
         "-m", "1", "-nostdin", "-timeout", "20s", "-trace_msg",
         "-message_file", str(tmp_path / "sipp.messages"), "-trace_err",
         "-error_file", str(tmp_path / "sipp.errors")],
        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path)

    def listening() -> bool:
        ss = subprocess.run(["ss", "-Hlun"], capture_output=True, text=True).stdout
        return proc.poll() is not None or f"127.0.0.1:{port} " in ss

    try:
        wait_until(listening, 10, f"sipp listening on 127.0.0.1:{port}")
        yield port, proc
    finally:
        if proc.poll() is None:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        out.close()


def test_sipp_answers_200_and_checked_the_event(tmp_path: Path) -> None:
    with sipp_uas("notify_200.xml", tmp_path) as (port, proc):
        answer = send_check_sync("127.0.0.1", port, mac="00:90:8f:00:00:01")
        assert proc.wait(10) == 0, (tmp_path / "sipp.out").read_text()  # its checks passed
    assert answer.status == "SIP/2.0 200 OK"
    assert answer.transmissions == 1 and answer.provisional == ()
    assert answer.sent_at <= answer.answered_at
    received = (tmp_path / "sipp.messages").read_text()
    assert f"NOTIFY sip:00908F000001@127.0.0.1:{port} SIP/2.0" in received
    assert f"Call-ID: {answer.call_id}" in received and "Event: check-sync" in received


def test_sipp_answers_489_which_names_the_status_line(tmp_path: Path) -> None:
    with sipp_uas("notify_489.xml", tmp_path) as (port, proc):
        with pytest.raises(PhoneError) as err:
            send_check_sync("127.0.0.1", port, mac="00908F000001")
        assert proc.wait(10) == 0
    assert str(err.value) == (f"SIP NOTIFY check-sync refused by 127.0.0.1:{port}: "
                              f"SIP/2.0 489 Bad Event")


def test_a_provisional_answer_is_noted_and_the_final_one_counts(tmp_path: Path) -> None:
    with sipp_uas("notify_100_then_200.xml", tmp_path) as (port, proc):
        answer = send_check_sync("127.0.0.1", port, mac="00908F000001", t1=0.05)
        assert proc.wait(10) == 0, (tmp_path / "sipp.out").read_text()
    assert answer.status == "SIP/2.0 200 OK"
    # after the 100, retransmissions go every T2 (0.4 s): at 0.05 s and 0.45 s, not 0.15,
    # 0.35, ... as before it; SIPp answers each retransmission with its 100 again
    assert answer.transmissions == 3
    assert answer.provisional == ("SIP/2.0 100 Trying",) * 3
    assert (tmp_path / "sipp.messages").read_text().count("NOTIFY sip:") == 3
    assert answer.answered_at - answer.sent_at >= 0.6


def test_nothing_answers_retransmissions_then_timer_f(tmp_path: Path) -> None:
    """T1 = 20 ms: sent at 0, 20, 60, 140, 300, 460, ... (doubling up to T2 = 160 ms), the
    last at 1.26 s; Timer F ends it at 64*T1 = 1.28 s: 11 transmissions."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        with pytest.raises(PhoneError) as err:
            send_check_sync("127.0.0.1", port, mac="00908F000001", t1=0.02)
        silent.settimeout(0)
        got = []
        while True:
            try:
                got.append(silent.recv(65535))
            except BlockingIOError:
                break
    assert str(err.value) == (f"no answer to SIP NOTIFY check-sync at 127.0.0.1:{port} "
                              f"after 11 transmissions (Timer F, 1.28 s)")
    assert len(got) == 11 and len(set(got)) == 1  # retransmissions are the same request


def test_answers_of_other_transactions_are_ignored() -> None:
    """A 200 with another branch, one with another Call-ID and garbage come first; the
    phone's own 503 then ends the transaction."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as phone:
        phone.bind(("127.0.0.1", 0))
        port = phone.getsockname()[1]

        def answer() -> None:
            data, peer = phone.recvfrom(65535)
            head = data.decode().split("\r\n")
            keep = [h for h in head if h.split(":")[0] in ("Via", "From", "To", "Call-ID",
                                                           "CSeq")]
            via, rest = keep[0], keep[1:]
            phone.sendto(b"\x00garbage", peer)
            other_branch = via.replace("branch=z9hG4bK", "branch=z9hG4bKother")
            for lines in ([other_branch, *rest], [via, *[h if not h.startswith("Call-ID")
                                                          else "i: other@x" for h in rest]]):
                phone.sendto(("SIP/2.0 200 OK\r\n" + "\r\n".join(lines) +
                              "\r\nContent-Length: 0\r\n\r\n").encode(), peer)
            compact = [("v:" + via[4:]), *rest]  # compact Via form: still ours
            phone.sendto(("SIP/2.0 503 Service Unavailable\r\n" + "\r\n".join(compact) +
                          "\r\nl: 0\r\n\r\n").encode(), peer)

        responder = threading.Thread(target=answer)
        responder.start()
        with pytest.raises(PhoneError, match=r"refused by .*: SIP/2\.0 503 Service Unavailable"):
            send_check_sync("127.0.0.1", port, mac="00908F000001", t1=0.5)
        responder.join(5)


def test_a_request_is_not_taken_for_a_response() -> None:
    assert _parse_response(b"NOTIFY sip:x@y SIP/2.0\r\nCSeq: 1 NOTIFY\r\n\r\n") is None
    parsed = _parse_response(b"SIP/2.0 180 Ringing\r\nv: SIP/2.0/UDP a;branch=z9\r\n\r\n")
    assert parsed is not None and parsed.code == 180 and "via" in parsed.headers
