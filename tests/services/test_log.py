"""RequestLog: filters, event waits, the JSONL sink, MAC filling, DNS host attribution."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from framework.services import (
    Outcome,
    RequestLog,
    RequestRecord,
    RequestWaitTimeout,
    build_url,
    normalize_mac,
)


def record(protocol: str = "tftp", client_ip: str = "192.0.2.50", path: str = "440HD.img",
           when: float | None = None, **extra: object) -> RequestRecord:
    fields: dict[str, object] = {
        "time": time.time() if when is None else when, "protocol": protocol,
        "client_ip": client_ip, "host": "192.0.2.1", "path": path,
        "url": build_url(protocol, "192.0.2.1", None, path) if protocol != "dns" else None,
        "method": "RRQ", "outcome": Outcome.SERVED}
    fields.update(extra)
    return RequestRecord(**fields)  # type: ignore[arg-type]


def test_filters_by_protocol_client_mac_and_time() -> None:
    log = RequestLog(mac_resolver={"192.0.2.50": "00-90-8F-00-00-01"}.get)
    log.append(record("tftp", when=100.0))
    log.append(record("http", path="/a.cfg", when=200.0))
    log.append(record("http", client_ip="192.0.2.51", path="/b.cfg", when=300.0))

    assert [r.path for r in log.records(protocol="http")] == ["/a.cfg", "/b.cfg"]
    assert [r.path for r in log.records(protocol=("tftp", "http"), since=150)] == [
        "/a.cfg", "/b.cfg"]
    assert [r.protocol for r in log.records(client_mac="00908F000001")] == ["tftp", "http"]
    assert log.records(client_ip="192.0.2.51")[0].client_mac is None  # resolver knows no MAC
    assert log.records()[0].client_mac == "00:90:8f:00:00:01"  # normalised
    with pytest.raises(ValueError, match="unknown protocol"):
        log.records(protocol="sip")


def test_wait_for_wakes_on_an_append_from_another_thread() -> None:
    log = RequestLog()
    appended = threading.Event()

    def phone() -> None:
        log.append(record("http", path="/440HD.img"))
        appended.set()

    threading.Thread(target=phone).start()
    rec = log.wait_for(lambda r: r.path == "/440HD.img", timeout=5, what="the firmware GET")

    assert rec.protocol == "http" and appended.wait(5)


def test_wait_for_ends_early_when_its_stop_event_is_set_and_woken() -> None:
    """The lab's "the phone says it is done": the wait ends long before its timeout, but a
    record that matches is still returned first."""
    log = RequestLog()
    done = threading.Event()

    def phone_finishes() -> None:
        done.set()
        log.wake()

    threading.Thread(target=phone_finishes).start()
    started = time.monotonic()
    with pytest.raises(RequestWaitTimeout, match="stopped waiting"):
        log.wait_for(lambda r: r.path == "/never", timeout=60, what="x", stop=done)
    assert time.monotonic() - started < 30
    log.append(record("http", path="/late.cfg"))
    assert log.wait_for(lambda r: r.path == "/late.cfg", timeout=60, what="y",
                        stop=done).path == "/late.cfg"


def test_wait_for_timeout_names_what_was_awaited_and_shows_recent_requests() -> None:
    log = RequestLog()
    log.append(record("tftp", path="wrong.img"))

    with pytest.raises(RequestWaitTimeout) as caught:
        log.wait_for(lambda r: r.path == "440HD.img", timeout=0.05, what="ph1's firmware RRQ")

    message = str(caught.value)
    assert "ph1's firmware RRQ" in message and "0.05 s" in message
    assert "tftp://192.0.2.1/wrong.img" in message
    assert isinstance(caught.value, TimeoutError)


def test_wait_for_count_says_how_many_arrived() -> None:
    log = RequestLog()
    log.append(record("http", path="/440HD.img"))
    log.append(record("http", path="/00908F000001.cfg"))

    both = log.wait_for_count(lambda r: r.protocol == "http", 2, timeout=1, what="two GETs")
    with pytest.raises(RequestWaitTimeout, match=r"three GETs \(2 of 3 arrived\)"):
        log.wait_for_count(lambda r: r.protocol == "http", 3, timeout=0.01, what="three GETs")

    assert [r.path for r in both] == ["/440HD.img", "/00908F000001.cfg"]


def test_since_ignores_older_records() -> None:
    log = RequestLog()
    log.append(record(when=10.0))

    with pytest.raises(RequestWaitTimeout):
        log.wait_for(lambda r: True, timeout=0.01, what="anything new", since=20.0)


def test_jsonl_sink_writes_one_flushed_object_per_record(tmp_path: Path) -> None:
    sink = tmp_path / "run" / "requests.jsonl"
    log = RequestLog(jsonl=sink)
    first = log.append(record("dns", path="", host="Audiocodes.com",
                              details={"answer": ["192.0.2.1"], "qtype": "A"}))
    log.append(record("ftp", path="/440HD.img"))

    lines = sink.read_text().splitlines()  # readable before close: flushed as written
    assert len(lines) == 2
    assert RequestRecord.from_dict(json.loads(lines[0])) == first
    assert json.loads(lines[1])["url"] == "ftp://192.0.2.1/440HD.img"
    log.close()


def test_subscribers_see_records_and_a_failing_one_does_not_break_the_log() -> None:
    log = RequestLog()
    seen: list[str] = []

    def broken(_: RequestRecord) -> None:
        raise RuntimeError("subscriber bug")

    log.subscribe(broken)
    unsubscribe = log.subscribe(lambda r: seen.append(r.path))
    log.append(record(path="a.img"))
    unsubscribe()
    log.append(record(path="b.img"))

    assert seen == ["a.img"] and len(log) == 2


def test_tftp_host_comes_from_a_live_dns_answer_of_that_client_only() -> None:
    log = RequestLog()
    log.append(record("dns", path="", host="AudioCodes.com", when=1000.0,
                      details={"answer": ["192.0.2.1"], "ttl": 60}))

    assert log.host_for("192.0.2.50", "192.0.2.1", at=1030.0) == "AudioCodes.com"
    assert log.host_for("192.0.2.50", "192.0.2.1", at=1061.0) == "192.0.2.1"  # TTL ran out
    assert log.host_for("192.0.2.51", "192.0.2.1", at=1030.0) == "192.0.2.1"  # other client
    log.forget_names("192.0.2.50")  # the phone rebooted: its cache is empty
    assert log.host_for("192.0.2.50", "192.0.2.1", at=1030.0) == "192.0.2.1"


@pytest.mark.parametrize(("spelling", "expected"), [
    ("00:90:8F:00:00:01", "00:90:8f:00:00:01"),
    ("00908F000001", "00:90:8f:00:00:01"),
    ("0090.8f00.0001", "00:90:8f:00:00:01"),
])
def test_mac_spellings(spelling: str, expected: str) -> None:
    assert normalize_mac(spelling) == expected


def test_bad_mac_is_named() -> None:
    with pytest.raises(ValueError, match="'00:90:8F' is not a MAC address"):
        normalize_mac("00:90:8F")


def test_urls_are_rebuilt_from_wire_evidence() -> None:
    assert build_url("tftp", "Audiocodes.com", 69, "440HD.img") == "tftp://Audiocodes.com/440HD.img"
    assert build_url("tftp", "h", 69, "/abs.img") == "tftp://h//abs.img"  # as sent
    assert build_url("http", "h", 8080, "/a.cfg") == "http://h:8080/a.cfg"
    assert build_url("https", "192.0.2.1", 443, "/a") == "https://192.0.2.1/a"
    assert build_url("ftp", "h", 21, "a.img") == "ftp://h/a.img"


def test_unwritable_sink_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="cannot open request log sink"):
        RequestLog(jsonl=blocker / "requests.jsonl")
