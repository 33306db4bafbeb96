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
