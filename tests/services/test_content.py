"""ContentStore: per-path policies, host/protocol precedence, bad input."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from framework.services import ContentStore


def test_unknown_paths_are_not_found() -> None:
    assert ContentStore().lookup("/440HD.img").kind == "not-found"


def test_tftp_filename_and_http_path_name_the_same_file() -> None:
    content = ContentStore()
    content.serve("440HD.img", b"fw")

    assert content.lookup("/440HD.img").read_all() == b"fw"
    assert content.lookup("440HD.img", protocol="tftp").size == 2


def test_most_specific_policy_wins() -> None:
    content = ContentStore()
    content.serve("/x.cfg", b"any")
    content.serve("/x.cfg", b"http", protocol="http")
    content.serve("/x.cfg", b"name", host="Audiocodes.com")
    content.not_found("/x.cfg", host="audiocodes.COM:8080", protocol="http")

    assert content.lookup("/x.cfg", protocol="ftp").read_all() == b"any"
    assert content.lookup("/x.cfg", protocol="http").read_all() == b"http"
    assert content.lookup("/x.cfg", host="AUDIOCODES.com", protocol="tftp").read_all() == b"name"
    assert content.lookup("/x.cfg", host="Audiocodes.com", protocol="http").kind == "not-found"


def test_cut_reports_full_size_and_the_cut_point() -> None:
    content = ContentStore()
    content.cut("/a.img", 10, b"0123456789abcdef")
    content.cut("/small.img", 100, b"short")

    cut = content.lookup("/a.img")
    assert (cut.kind, cut.size, cut.cut_after, cut.deliverable) == ("cut", 16, 10, 10)
    whole = content.lookup("/small.img")  # the cut lies beyond the end: a normal transfer
    assert (whole.kind, whole.cut_after) == ("serve", None)


def test_served_file_is_read_at_request_time_and_vanishing_means_not_found(tmp_path: Path) -> None:
    image = tmp_path / "440HD.img"
    image.write_bytes(b"v1")
    content = ContentStore()
    content.serve("/440HD.img", file=image)
    image.write_bytes(b"version 2")

    assert content.lookup("/440HD.img").read_all() == b"version 2"
    image.unlink()
    gone = content.lookup("/440HD.img")
    assert gone.kind == "not-found" and "is gone" in gone.reason


def test_policies_change_while_lookups_run() -> None:
    content = ContentStore()
    stop = threading.Event()
    kinds: set[str] = set()

    def server() -> None:
        while not stop.is_set():
            kinds.add(content.lookup("/fw.img").kind)

    thread = threading.Thread(target=server)
    thread.start()
    for _ in range(200):
        content.serve("/fw.img", b"x")
        content.remove("/fw.img")
    stop.set()
    thread.join()
    assert kinds <= {"serve", "not-found"}
    assert content.paths() == []


@pytest.mark.parametrize(("call", "message"), [
    (lambda c: c.serve("/a", b"x", file="/etc/hostname"), "exactly one of data= or file="),
    (lambda c: c.serve("/a"), "exactly one of data= or file="),
    (lambda c: c.serve("/a", file="/nonexistent/440HD.img"), "does not exist"),
    (lambda c: c.cut("/a", -1, b"x"), "cut after must be a byte count"),
    (lambda c: c.serve("/a", b"x", protocol="sftp"), "unknown protocol 'sftp'"),
    (lambda c: c.serve("", b"x"), "non-empty string"),
])
def test_bad_policies_are_named(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        call(ContentStore())
