"""The virtual phone's SIP agent (framework/sim/sip.py) on loopback, as a PBX sees it:
NOTIFY check-sync answered 200 and the phone asked once, retransmissions answered again
without a second cycle, 489 for other events, 200 for OPTIONS, 501 otherwise, malformed
datagrams ignored. SIPp (an independent UAC) sends the check-sync and the other event."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from framework.sim.sip import PhoneSipAgent

SCENARIOS = Path(__file__).parent / "sipp"


@dataclass
class FakePhone:
    model: str = "440HD"
    mac: str = "00908F000001"
    version: str = "2.2.8.61"
    reasons: list[str] = field(default_factory=list)
    asked: threading.Event = field(default_factory=threading.Event)

    def check_sync(self, reason: str = "") -> None:
        self.reasons.append(reason)
        self.asked.set()


@pytest.fixture
def agent() -> Iterator[tuple[PhoneSipAgent, FakePhone]]:
    phone = FakePhone()
    sip = PhoneSipAgent(phone)
    sip.start("127.0.0.1", 0)
    yield sip, phone
    sip.stop()


@pytest.fixture
def client() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


def request(client: socket.socket, method: str = "NOTIFY", event: str | None = "check-sync",
            branch: str = "z9hG4bKabc", cseq: int = 1, rport: bool = True,
            via_port: int | None = None) -> bytes:
    port = via_port if via_port is not None else client.getsockname()[1]
    lines = [f"{method} sip:00908F000001@127.0.0.1:5060 SIP/2.0",
             f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch}{';rport' if rport else ''}",
             "Max-Forwards: 70", "From: <sip:hil@127.0.0.1>;tag=f1",
             "To: <sip:00908F000001@127.0.0.1>", "Call-ID: c1@127.0.0.1",
             f"CSeq: {cseq} {method}"]
    if event is not None:
        lines.append(f"Event: {event}")
    return ("\r\n".join([*lines, "Content-Length: 0"]) + "\r\n\r\n").encode()


def exchange(agent: PhoneSipAgent, client: socket.socket, data: bytes) -> str:
    assert agent.port is not None
    client.sendto(data, ("127.0.0.1", agent.port))
    return client.recv(65535).decode()


def test_check_sync_is_answered_200_copying_the_transaction_and_asks_the_phone_once(
        agent: tuple[PhoneSipAgent, FakePhone], client: socket.socket) -> None:
    sip, phone = agent
    first = exchange(sip, client, request(client))
    lines = first.split("\r\n")
    assert lines[0] == "SIP/2.0 200 OK"
    port = client.getsockname()[1]
    assert f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKabc;rport={port};" \
           "received=127.0.0.1" in lines
    assert "From: <sip:hil@127.0.0.1>;tag=f1" in lines and "CSeq: 1 NOTIFY" in lines
    assert "Call-ID: c1@127.0.0.1" in lines and first.endswith("Content-Length: 0\r\n\r\n")
    assert next(x for x in lines if x.startswith("To: ")).startswith(
        "To: <sip:00908F000001@127.0.0.1>;tag=")
    assert phone.asked.wait(5)
    # The retransmission: the very same answer, and the phone is not asked again.
    assert exchange(sip, client, request(client)) == first
    assert exchange(sip, client, request(client, "OPTIONS", None, "z9hG4bKo", 2)).startswith(
        "SIP/2.0 200 OK\r\n")  # processed after the retransmission: nothing was queued
    assert phone.reasons == ["SIP NOTIFY check-sync from 127.0.0.1 (Call-ID c1@127.0.0.1)"]
    # A new transaction (new branch and CSeq) is a new request.
    assert exchange(sip, client, request(client, branch="z9hG4bKdef", cseq=3)).startswith(
        "SIP/2.0 200 OK\r\n")
    exchange(sip, client, request(client, "OPTIONS", None, "z9hG4bKp", 4))  # after its turn
    assert len(phone.reasons) == 2


@pytest.mark.parametrize(("method", "event", "status"), [
    ("NOTIFY", "check-sync;reboot=false", "SIP/2.0 200 OK"),
    ("NOTIFY", "dialog", "SIP/2.0 489 Bad Event"),
    ("NOTIFY", None, "SIP/2.0 489 Bad Event"),
    ("OPTIONS", None, "SIP/2.0 200 OK"),
    ("INVITE", None, "SIP/2.0 501 Not Implemented"),
    ("SUBSCRIBE", "check-sync", "SIP/2.0 501 Not Implemented"),
])
def test_answers_by_method_and_event(agent: tuple[PhoneSipAgent, FakePhone],
                                     client: socket.socket, method: str, event: str | None,
                                     status: str) -> None:
    sip, phone = agent
    answer = exchange(sip, client, request(client, method, event))
    assert answer.split("\r\n", 1)[0] == status
    if status == "SIP/2.0 200 OK" and method == "NOTIFY":
        assert phone.asked.wait(5)
    else:
        assert phone.reasons == []
    if "489" in status:
        assert "Allow-Events: check-sync" in answer


def test_without_rport_the_answer_goes_to_the_via_port(
        agent: tuple[PhoneSipAgent, FakePhone], client: socket.socket) -> None:
    sip, _ = agent
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(5)
        assert sip.port is not None
        client.sendto(request(client, rport=False, via_port=listener.getsockname()[1]),
                      ("127.0.0.1", sip.port))
        assert listener.recv(65535).startswith(b"SIP/2.0 200 OK\r\n")


@pytest.mark.parametrize("junk", [
    b"", b"\r\n\r\n", b"\xff\xfe garbage", b"HELLO WORLD\r\n\r\n",
    b"NOTIFY sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKx\r\n\r\n",  # no Call-ID
    b"NOTIFY sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\n"
    b"CSeq: 1 OPTIONS\r\nEvent: check-sync\r\n\r\n",                              # CSeq method
    b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 1.2.3.4\r\n\r\n",                       # a response
])
def test_malformed_datagrams_are_ignored_and_the_agent_keeps_answering(
        agent: tuple[PhoneSipAgent, FakePhone], client: socket.socket, junk: bytes) -> None:
    sip, phone = agent
    assert sip.port is not None
    client.sendto(junk, ("127.0.0.1", sip.port))
    assert exchange(sip, client, request(client, "OPTIONS", None)).startswith("SIP/2.0 200 OK")
    assert phone.reasons == []


def test_compact_headers_are_understood(agent: tuple[PhoneSipAgent, FakePhone],
                                        client: socket.socket) -> None:
    sip, phone = agent
    port = client.getsockname()[1]
    data = (f"NOTIFY sip:p@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKc"
            f"\r\nf: <sip:a@b>;tag=1\r\nt: <sip:p@127.0.0.1>\r\ni: cc\r\nCSeq: 7 NOTIFY\r\n"
            f"o: check-sync\r\nl: 0\r\n\r\n").encode()
    assert exchange(sip, client, data).startswith("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP")
    assert phone.asked.wait(5)


def test_stop_closes_the_port(agent: tuple[PhoneSipAgent, FakePhone]) -> None:
    sip, _ = agent
    port = sip.port
    sip.stop()
    assert sip.port is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port or 0))  # free again


# -- SIPp, a UAC we did not write ------------------------------------------------------------

def sipp(scenario: str, port: int, transaction: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sipp", "-sf", str(SCENARIOS / scenario), "-key", "transaction", transaction,
         "-cid_str", f"{transaction}@%s", "-s", "00908F000001", "-m", "1", "-i", "127.0.0.1",
         "-nostdin", "-timeout", "5s", "-timeout_error", f"127.0.0.1:{port}"],
        capture_output=True, text=True, timeout=20, cwd="/tmp")


@pytest.mark.skipif(shutil.which("sipp") is None, reason="needs SIPp (Debian sip-tester)")
def test_sipp_check_sync_gets_200_and_another_event_489(
        agent: tuple[PhoneSipAgent, FakePhone]) -> None:
    sip, phone = agent
    assert sip.port is not None
    done = sipp("check_sync.xml", sip.port, "unit1")
    assert done.returncode == 0, done.stdout[-2000:]
    assert phone.asked.wait(5) and phone.reasons == [
        "SIP NOTIFY check-sync from 127.0.0.1 (Call-ID unit1@127.0.0.1)"]
    other = sipp("other_event.xml", sip.port, "unit2")
    assert other.returncode == 0, other.stdout[-2000:]
    assert len(phone.reasons) == 1
