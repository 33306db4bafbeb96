"""Packet capture on the lab bridge, split into one pcap per client MAC."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from framework.services import CaptureError, PacketCapture
from tests.services.conftest import CLIENT_IPS, CLIENT_MACS, PREFIX, SERVER, Wire

pytestmark = pytest.mark.netns


def test_split_keeps_one_clients_frames_only(wire: Wire, tmp_path: Path) -> None:
    from scapy.layers.l2 import Ether
    from scapy.utils import rdpcap

    wire.content.serve("/c0.cfg", b"zero")
    wire.content.serve("/c1.cfg", b"one")
    capture = PacketCapture("br0", tmp_path / "lab.pcap", netns=f"{PREFIX}-lab")
    with capture:
        for i in (0, 1):
            wire.run(i, ["ip", "neigh", "flush", "all"])  # so ARP is captured too
            result = wire.curl(i, "-o", "/dev/null", f"http://{SERVER}/c{i}.cfg")
            assert result.returncode == 0, result.stderr
        wire.wait(lambda r: r.path == "/c1.cfg", "client 1's GET")

    mine = capture.split(CLIENT_MACS[0])

    assert mine.name == "lab-00005e005350.pcap"
    frames = rdpcap(str(mine))
    assert len(frames) >= 10  # ARP, TCP handshake, request, response, teardown
    for frame in frames:
        ends = {frame[Ether].src, frame[Ether].dst}
        assert CLIENT_MACS[0] in ends or "ff:ff:ff:ff:ff:ff" in ends
        assert CLIENT_MACS[1] not in ends
    payload = b"".join(bytes(f) for f in frames)
    assert b"GET /c0.cfg" in payload and b"/c1.cfg" not in payload
    assert capture.addresses_of(CLIENT_MACS[0]) == {CLIENT_IPS[0]}
    # an independent reader (libpcap, as in Wireshark) accepts the file
    read = subprocess.run(["tcpdump", "-r", str(mine), "-n"], capture_output=True, text=True)
    assert read.returncode == 0 and f"{CLIENT_IPS[0]}" in read.stdout


def test_capture_on_a_missing_interface_is_a_clear_error(wire: Wire, tmp_path: Path) -> None:
    capture = PacketCapture("nosuch0", tmp_path / "x.pcap", netns=f"{PREFIX}-lab")

    with pytest.raises(CaptureError) as caught:
        capture.start(timeout=5)

    assert f"nosuch0 in namespace {PREFIX}-lab" in str(caught.value)
    assert "No such device" in str(caught.value)  # tcpdump's own reason is passed on


def test_a_running_capture_is_sliced_case_by_case(wire: Wire, tmp_path: Path) -> None:
    """One tcpdump for the run; each 'case' gets the packets since its start and appended
    since the previous slice (what the lab runner does per phone)."""
    import time

    from scapy.utils import rdpcap

    from framework.services import PcapTail

    wire.content.serve("/first.cfg", b"1")
    wire.content.serve("/second.cfg", b"2")
    capture = PacketCapture("br0", tmp_path / "run.pcap", netns=f"{PREFIX}-lab")
    with capture:
        tail = PcapTail(capture.path)
        slices = []
        for name in ("first", "second"):
            since = time.time()
            result = wire.curl(0, "-o", "/dev/null", f"http://{SERVER}/{name}.cfg")
            assert result.returncode == 0, result.stderr
            wire.wait(lambda r, n=name: r.path == f"/{n}.cfg", f"GET /{name}.cfg")
            out = tmp_path / f"{name}.pcap"
            # tcpdump -U writes each packet as it is captured; the curl exchange is over
            count = tail.slice(since, out)
            slices.append((count, rdpcap(str(out)), since))
    for (count, frames, since), name, other in zip(slices, ("first", "second"),
                                                  ("second", "first"), strict=True):
        assert count == len(frames) >= 6  # TCP handshake, request, response, teardown
        payload = b"".join(bytes(f) for f in frames)
        assert f"GET /{name}.cfg".encode() in payload
        assert f"/{other}.cfg".encode() not in payload
        assert all(float(f.time) >= since for f in frames)


def test_slicing_keeps_a_half_written_record_for_next_time(tmp_path: Path) -> None:
    import struct

    from framework.services import PcapTail

    header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)

    def record(ts: float, payload: bytes) -> bytes:
        return struct.pack("<IIII", int(ts), int(ts % 1 * 1e6), len(payload),
                           len(payload)) + payload

    run = tmp_path / "run.pcap"
    old, a, b = record(100.0, b"o" * 60), record(200.5, b"a" * 60), record(201.0, b"b" * 70)
    run.write_bytes(header + old + a + b[:30])
    tail = PcapTail(run)
    assert tail.slice(150.0, tmp_path / "one.pcap") == 1  # 'old' is before the case
    assert (tmp_path / "one.pcap").read_bytes() == header + a
    with open(run, "ab") as f:
        f.write(b[30:])
    assert tail.slice(150.0, tmp_path / "two.pcap") == 1
    assert (tmp_path / "two.pcap").read_bytes() == header + b
    assert tail.slice(0.0, tmp_path / "none.pcap") == 0
    assert (tmp_path / "none.pcap").read_bytes() == header
    (tmp_path / "junk.pcap").write_bytes(b"not a pcap at all, not at all")
    with pytest.raises(CaptureError, match="not a pcap file"):
        PcapTail(tmp_path / "junk.pcap").slice(0.0, tmp_path / "x.pcap")
