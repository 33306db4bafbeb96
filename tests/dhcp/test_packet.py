"""DHCP messages: parse only what is DHCP, refuse everything else with a reason; transcripts."""

from __future__ import annotations

import json
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.dhcp.packet import (
    BROADCAST_IP,
    BROADCAST_MAC,
    MAGIC_COOKIE,
    ZERO_IP,
    DhcpConfigError,
    DhcpMessageError,
    build_frame,
    normalise_mac,
    parse_dhcp,
    parse_frame,
)
from framework.dhcp.transcript import RECEIVED, DhcpMessageRecord, DhcpWaitTimeout, Transcript

MAC = "00:90:8f:00:00:01"


def _frame(options: dict[int, bytes], **kw: object) -> bytes:
    return bytes(build_frame(src_mac=MAC, dst_mac=BROADCAST_MAC, src_ip=ZERO_IP, dst_ip=BROADCAST_IP,
                             sport=68, dport=67, op=1, xid=0x1234, mac=MAC, options=options, **kw))  # type: ignore[arg-type]


def test_a_built_frame_parses_back_with_every_field_and_option() -> None:
    options = {53: b"\x03", 50: bytes((192, 0, 2, 5)), 54: bytes((192, 0, 2, 1)), 160: b"u" * 400, 67: b""}
    frame = parse_frame(_frame(options, flags=0x8000, ciaddr="192.0.2.9"))
    msg = frame.message
    assert (frame.src_mac, frame.src_ip, frame.dst_ip, frame.sport, frame.dport) == (MAC, ZERO_IP, BROADCAST_IP, 68, 67)
    assert (msg.op, msg.xid, msg.mac, msg.ciaddr, msg.message_type) == (1, 0x1234, MAC, "192.0.2.9", "REQUEST")
    assert msg.broadcast and msg.options == options
    assert msg.option_ip(50) == "192.0.2.5" and msg.option_ip(54) == "192.0.2.1" and msg.option_ip(67) is None


def test_short_replies_are_padded_to_300_bytes_and_big_ones_overload_when_asked() -> None:
    small = _frame({53: b"\x01"})
    assert len(small) - 42 == 300  # RFC 1542 2.1 minimum BOOTP message
    big = parse_frame(_frame({53: b"\x02", 160: b"v" * 400}, max_size=548))
    assert big.message.options[52] in (b"\x01", b"\x03") and big.message.options[160] == b"v" * 400


@pytest.mark.parametrize(("payload", "message"), [
    (b"", r"0 bytes: shorter than a BOOTP header"),
    (bytes(236) + b"abcd", r"no DHCP magic cookie \(got 61626364\)"),
    (b"\x03" + bytes(235) + MAGIC_COOKIE, r"op 3: neither BOOTREQUEST"),
    (b"\x01\x06\x06" + bytes(233) + MAGIC_COOKIE, r"hardware type 6 length 6: only Ethernet"),
    (b"\x01\x01\x06" + bytes(233) + MAGIC_COOKIE + b"\x37\x05ab", r"option 55 at offset 0 says length 5"),
    (b"\x01\x01\x06" + bytes(233) + MAGIC_COOKIE + b"\xff", r"no option 53 \(message type\): a BOOTP message"),
    (b"\x01\x01\x06" + bytes(233) + MAGIC_COOKIE + b"\x35\x01\x09", r"option 53 \(message type\) value '09'"),
])
def test_non_dhcp_payloads_are_refused_with_the_reason(payload: bytes, message: str) -> None:
    with pytest.raises(DhcpMessageError, match=message):
        parse_dhcp(payload)


@settings(max_examples=300)
@given(st.binary(max_size=600), st.booleans())
def test_random_bytes_only_ever_raise_dhcp_message_error(junk: bytes, with_cookie: bool) -> None:
    payload = (b"\x01\x01\x06" + junk[:233].ljust(233, b"\x00") + MAGIC_COOKIE + junk[233:]) if with_cookie else junk
    try:
        parse_dhcp(payload)
    except DhcpMessageError:
        pass
    try:
        parse_frame(junk)
    except DhcpMessageError:
        pass


def test_macs_in_any_usual_spelling_and_a_clear_error_otherwise() -> None:
    for spelling in ("00908F000001", "00-90-8F-00-00-01", "00:90:8f:00:00:01", "0090.8f00.0001"):
        assert normalise_mac(spelling) == MAC
    with pytest.raises(DhcpConfigError, match=r"allowlist MAC '00:90:8f': expected 12 hex digits"):
        normalise_mac("00:90:8f", where="allowlist MAC")


# --- the transcript (no wire needed) --------------------------------------------------------

def _record(kind: str, at: float, mac: str = MAC) -> DhcpMessageRecord:
    return DhcpMessageRecord(time=at, direction=RECEIVED, message_type=kind, xid=1, mac=mac,
                             ciaddr=ZERO_IP, yiaddr=ZERO_IP, source=ZERO_IP, destination=BROADCAST_IP,
                             options={55: bytes((66, 67, 160)), 60: b"440HD", 77: b"\x05440HD", 12: b"ph1"})


def test_wait_for_is_woken_by_the_record_not_by_polling() -> None:
    transcript = Transcript()
    since = time.time()
    threading.Timer(0.05, lambda: transcript.append(_record("DISCOVER", time.time()))).start()
    started = time.monotonic()
    record = transcript.wait_for("00908F000001", "discover", since=since, timeout=5)
    assert record.message_type == "DISCOVER" and time.monotonic() - started < 1


def test_wait_for_ignores_older_records_and_its_timeout_names_what_was_awaited() -> None:
    transcript = Transcript()
    transcript.append(_record("DISCOVER", time.time() - 10))
    with pytest.raises(DhcpWaitTimeout, match=r"no DHCP DISCOVER for 00:90:8f:00:00:01 within 0.05 s .*"
                                              r"last messages for it: received DISCOVER xid=0x00000001"):
        transcript.wait_for(MAC, "DISCOVER", since=time.time(), timeout=0.05)


def test_records_read_like_a_lab_engineer_expects() -> None:
    data = _record("DISCOVER", 0.0).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["time"] == "1970-01-01T00:00:00.000000+00:00"
    assert data["parameter_list"] == [66, 67, 160] and data["vendor_class"] == "440HD"
    assert data["user_class"] == ["440HD"] and data["host_name"] == "ph1" and data["client_id"] is None
