"""`hil lab serve` on a wire: real clients (busybox udhcpc, curl) against the bench server."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from framework.netns import TestNetwork, have_privileges
from tests.dhcp.foreign_servers import Dnsmasq, ForeignServer, Udhcpd, have

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(not have_privileges()[0], reason="needs root for namespaces")]
FOREIGN_SERVERS = [
    pytest.param(Udhcpd, id="busybox-udhcpd"),
    pytest.param(Dnsmasq, id="dnsmasq",
                 marks=pytest.mark.skipif(not have("dnsmasq"), reason="no dnsmasq (make setup)")),
]
PHONE = "00:90:8f:00:0a:01"
STRANGER = "00:90:8f:00:0a:02"
SCRIPT = """#!/bin/sh
env | grep -E '^(ip|opt160|tftp|bootfile|boot_file|opt66|opt67|mask|dns)=' > "$OUT.$1"
[ "$1" = bound ] && ip addr add "$ip/24" dev "$interface"
exit 0
"""


@pytest.fixture
def bench(tmp_path: Path) -> Iterator[tuple[TestNetwork, queue.Queue[str], Path]]:
    opts = tmp_path / "options.yaml"
    opts.write_text(f'"{PHONE}":\n  66: "192.0.2.1"\n  67: "fw.img;ph.cfg"\n'
                    '  160: "http://192.0.2.1/fw.img;ph.cfg"\n')
    files = tmp_path / "files"
    files.mkdir()
    (files / "ph.cfg").write_text("system/type=440HD\n")
    log = tmp_path / "serve.jsonl"
    with TestNetwork(f"hilt-l{os.getpid() % 10000}", clients=2, macs=[PHONE, STRANGER]) as net:
        proc = subprocess.Popen(
            [sys.executable, "-m", "framework.cli", "lab", "serve", "--netns", net.lab.name,
             "--interface", "br0", "--addr", "192.0.2.1/24", "--options", str(opts), "--log",
             str(log), "--files", str(files), "--state-dir", str(tmp_path / "state")],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            lines: queue.Queue[str] = queue.Queue()
            threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout],  # type: ignore[union-attr]
                             daemon=True).start()
            first = lines.get(timeout=30)  # the "serving ..." line is the readiness event
            assert first.startswith("serving 1 phone(s) on br0"), first
            yield net, lines, log
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def wait_for_lines(lines: queue.Queue[str], done: Callable[[str], bool], timeout: float) -> None:
    """Consume the server's live lines until one satisfies ``done`` (an event wait)."""
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"hil lab serve printed no matching line within {timeout} s: "
                               f"{seen}") from None
        seen.append(line)
        if done(line):
            return


def udhcpc(net: TestNetwork, i: int, tmp: Path, timeout: int = 8) -> dict[str, str]:
    script = tmp / f"script{i}.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    out = tmp / f"env{i}"
    net.client(i).run(["env", f"OUT={out}", "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f",
                       "-t", "3", "-T", "1", "-O", "66", "-O", "67", "-O", "160", "-s",
                       str(script)], timeout=timeout)
    bound = tmp / f"env{i}.bound"
    if not bound.exists():
        return {}
    return dict(line.split("=", 1) for line in bound.read_text().splitlines() if "=" in line)


def test_phone_gets_its_options_and_files_are_logged(bench, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    net, proc, log = bench
    env = udhcpc(net, 0, tmp_path)
    assert env.get("ip", "").startswith("192.0.2.1")
    assert env.get("bootfile") == "fw.img;ph.cfg"
    assert bytes.fromhex(env["opt160"]).decode() == "http://192.0.2.1/fw.img;ph.cfg"
    got = net.client(0).run(["curl", "-sS", "-o", "-", "http://192.0.2.1/ph.cfg"], timeout=20)
    assert got.stdout == "system/type=440HD\n"
    net.client(0).run(["curl", "-sS", "-o", "/dev/null", "tftp://192.0.2.1/fw.img"], timeout=20)
    # The live console echo is the event: one line per record, as the log gets it.
    wait_for_lines(proc, lambda line: "tftp://192.0.2.1/fw.img" in line, timeout=10)
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    urls = {x["url"]: x for x in lines if x["protocol"] in ("http", "tftp")}
    assert urls["http://192.0.2.1/ph.cfg"]["outcome"] == "served"
    assert urls["http://192.0.2.1/ph.cfg"]["client_mac"] == PHONE
    assert urls["tftp://192.0.2.1/fw.img"]["outcome"] == "not-found"
    assert any(x["protocol"] == "dhcp" and x["message_type"] == "ACK" for x in lines)


def test_stranger_gets_no_lease(bench, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    net, _proc, log = bench
    assert udhcpc(net, 1, tmp_path, timeout=15) == {}
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    mine = [x for x in lines if x.get("client_mac") == STRANGER]
    assert mine and all(x["ignored"] for x in mine if x["protocol"] == "dhcp")
    # With an address of its own, it still gets no file.
    net.client(1).ip("addr", "add", "192.0.2.77/24", "dev", "eth0")
    got = net.client(1).run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                             "http://192.0.2.1/ph.cfg"], timeout=20)
    assert got.stdout == "404"


@pytest.mark.parametrize(("content", "message"), [
    ("- just\n- a list\n", "expected a mapping of MAC -> options"),
    ('"zz:zz":\n  66: x\n', "zz:zz: not a MAC address"),
    ('"00908F000001":\n  999: x\n', "00908F000001.999: option code must be a number 1-254"),
    ('"00908F000001":\n  43: {hex: "xyz"}\n', "43.hex: 'xyz' is not hex"),
    ('"00908F000001":\n  66: [1, 2]\n', "66: expected a string or {hex: ...}"),
    ("a: [\n", "not valid YAML"),
])
def test_bad_options_file_is_one_clear_line(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "o.yaml"
    f.write_text(content)
    proc = subprocess.run([sys.executable, "-m", "framework.cli", "lab", "serve", "--interface",
                           "lo", "--addr", "127.0.0.1/8", "--options", str(f)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and message in proc.stderr, proc.stderr


FOREIGN_IP = "192.0.2.99"
FOREIGN_POOL = ("192.0.2.150", "192.0.2.160")


@pytest.mark.parametrize("server", FOREIGN_SERVERS)
def test_a_foreign_server_with_its_defaults_is_refused_in_one_line(
        tmp_path: Path, server: type[ForeignServer]) -> None:
    """busybox udhcpd (offers after a 2 s ARP check) and dnsmasq (pings ~3 s first), each
    with its defaults, on the bench network: lab serve does not start, and says why once."""
    opts = tmp_path / "options.yaml"
    opts.write_text(f'"{PHONE}": {{}}\n')
    with TestNetwork(f"hilt-rogue-l{os.getpid() % 10000}", clients=1) as net, \
            server(net.client(0), FOREIGN_IP, FOREIGN_POOL, tmp_path / "srv"):
        proc = subprocess.run(
            [sys.executable, "-m", "framework.cli", "lab", "serve", "--netns", net.lab.name,
             "--interface", "br0", "--addr", "192.0.2.1/24", "--options", str(opts),
             "--state-dir", str(tmp_path / "state")],
            cwd=ROOT, capture_output=True, text=True, timeout=120)
        mac = net.client_mac(0)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("hil lab serve: refusing to start: another DHCP server answers "
                               f"on br0: OFFER from {FOREIGN_IP} ({mac}, {FOREIGN_IP})"), lines
    assert "serving" not in proc.stdout


def test_a_foreign_server_started_mid_run_is_warned_about_live(  # type: ignore[no-untyped-def]
        bench, tmp_path: Path) -> None:
    net, lines, log = bench
    with Udhcpd(net.client(1), FOREIGN_IP, FOREIGN_POOL, tmp_path / "srv"):
        assert udhcpc(net, 0, tmp_path).get("ip", "").startswith("192.0.2.1")  # ours first
        # udhcpd broadcasts its OFFER to the phone 2 s later: the console says so, live.
        wait_for_lines(lines, lambda line: line.startswith(
            f"WARNING foreign DHCP server {FOREIGN_IP} ({net.client_mac(1)}) sent OFFER of "
            f"192.0.2.15") and f"to {PHONE} at " in line, timeout=15)
    foreign = [json.loads(x) for x in log.read_text().splitlines() if "foreign_server" in x]
    assert foreign and foreign[0]["foreign_server"] == FOREIGN_IP
    assert all(x["foreign_server"] != "192.0.2.1" for x in foreign)
