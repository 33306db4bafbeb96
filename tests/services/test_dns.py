"""DNS on the wire: dig against our dnslib server."""

from __future__ import annotations

import socket

import pytest

from framework.services import Outcome
from tests.services.conftest import CLIENT_IPS, SERVER, Wire

pytestmark = pytest.mark.netns


def dig(wire: Wire, *args: str) -> str:
    result = wire.run(0, ["dig", "+tries=1", "+time=3", f"@{SERVER}", *args])
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_query_name_case_is_recorded_as_sent_and_answered_case_insensitively(wire: Wire) -> None:
    answer = dig(wire, "+short", "AUDIOcodes.Com")

    assert answer.strip() == SERVER
    rec = wire.wait(lambda r: r.protocol == "dns", "dig's query")
    assert rec.host == "AUDIOcodes.Com"  # exactly as dig sent it
    assert (rec.method, rec.outcome, rec.status) == ("A", Outcome.SERVED, 0)
    assert rec.details["answer"] == [SERVER] and rec.url is None
    assert rec.client_ip == CLIENT_IPS[0]


def test_unknown_name_is_nxdomain(wire: Wire) -> None:
    output = dig(wire, "redirect.audiocodes.com")

    assert "status: NXDOMAIN" in output
    rec = wire.wait(lambda r: r.protocol == "dns", "the query for an unknown name")
    assert rec.host == "redirect.audiocodes.com"
    assert rec.outcome == Outcome.NOT_FOUND and rec.details["rcode"] == "NXDOMAIN"


def test_zone_changes_apply_at_once_over_udp_and_tcp(wire: Wire) -> None:
    wire.zone.set("prov.example.test", "192.0.2.7")

    added = dig(wire, "+short", "+tcp", "PROV.example.test")
    aaaa = dig(wire, "prov.example.test", "AAAA")
    wire.zone.remove("prov.example.test")
    removed = dig(wire, "prov.example.test")

    assert added.strip() == "192.0.2.7"
    assert "status: NOERROR" in aaaa and "ANSWER: 0" in aaaa  # known name, no IPv6 address
    assert "status: NXDOMAIN" in removed
    transports = [r.details["transport"] for r in wire.records(protocol="dns")]
    assert transports == ["tcp", "udp", "udp"]


def test_garbage_datagrams_are_logged_and_the_server_keeps_answering(wire: Wire) -> None:
    with wire.client(0).entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.sendto(b"\x12\x34\xff", (SERVER, 53))  # shorter than a header
        sock.sendto(b"\x00\x07\x01\x00\x00\x01" + b"\x00" * 6 + b"\x3fnot", (SERVER, 53))
        sock.sendto(b"\x00\x08\x01\x00" + b"\x00" * 8, (SERVER, 53))  # no question
        sock.settimeout(5)
        formerr, _ = sock.recvfrom(512)

    short, truncated = (wire.wait(lambda r, n=n: r.outcome == Outcome.ERROR and
                                  r.details.get("datagram_length") == n,
                                  f"the record of the {n}-byte datagram") for n in (3, 16))
    assert "malformed DNS message" in short.details["error"] and short.details["id"] == 0x1234
    assert "malformed DNS message" in truncated.details["error"]
    empty = wire.wait(lambda r: r.details.get("id") == 8, "the question-less query")
    assert empty.outcome == Outcome.ERROR and empty.details["rcode"] == "FORMERR"
    assert formerr[:2] == b"\x00\x08" and formerr[3] & 0x0F == 1  # FORMERR on the wire
    assert dig(wire, "+short", "audiocodes.com").strip() == SERVER
