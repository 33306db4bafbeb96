"""Packet capture of the lab interface around a run, split into one pcap per phone.

tcpdump runs in the lab namespace (``ip netns exec``) with ``--immediate-mode`` (else
the file stays empty) and ``-Z root`` (else it drops privileges and cannot write the
file) (LAB-NOTES.md, "PDU, consoles, capture, reports"). ``start`` returns once tcpdump
says it is listening, so no packet of the run is missed. ``split(mac)`` writes the
frames of one phone (its MAC, the broadcasts about it, and the IPs it had) to a pcap
Wireshark opens: the evidence attached to that phone's verdict.

Usage::

    with PacketCapture("br-lab", run_dir / "lab.pcap", netns="hil-lab") as capture:
        ... run the cases ...
    capture.split("00:90:8F:00:00:01")          # -> run_dir/lab-00908f000001.pcap
"""

from __future__ import annotations

import shutil
import signal
import struct
import subprocess
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from framework.errors import HilError
from framework.services.log import normalize_mac

DLT_EN10MB = 1  # Ethernet link type: the only one split() understands


def _dies_with_us(argv: list[str]) -> list[str]:
    """tcpdump gets SIGTERM (it flushes the file) when its parent dies, so a run killed
    with SIGKILL leaves no capture behind (``setpriv --pdeathsig``, util-linux). Linux sends
    it when the *thread* that started the child ends, so only captures started by the main
    thread (which lives as long as the process) get it."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return argv
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


class CaptureError(HilError, RuntimeError):
    """tcpdump failed to start or to stop; the message carries its stderr."""


class PacketCapture:
    """tcpdump on ``interface`` (in ``netns``, or the caller's namespace) into ``path``.

    ``bpf_filter`` is an optional tcpdump filter expression.
    """

    def __init__(self, interface: str, path: str | Path, *, netns: str | None = None,
                 bpf_filter: str | None = None) -> None:
        self.interface = interface
        self.path = Path(path)
        self.netns = netns
        self.bpf_filter = bpf_filter
        self.packets_captured: int | None = None
        self.packets_dropped: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: list[str] = []
        self._listening = threading.Event()
        self._heard_listening = False
        self._reader: threading.Thread | None = None

    @property
    def where(self) -> str:
        return f"{self.interface} in namespace {self.netns}" if self.netns else self.interface

    def start(self, timeout: float = 5.0) -> PacketCapture:
        """Start tcpdump and wait until it is listening (an event, not a sleep)."""
        if self._process is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        argv = ["tcpdump", "-i", self.interface, "-w", str(self.path), "--immediate-mode",
                "-U", "-Z", "root", "-n", "-s", "0"]
        if self.bpf_filter:
            argv.append(self.bpf_filter)
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        argv = _dies_with_us(argv)
        self._stderr.clear()
        self._listening.clear()
        self._heard_listening = False
        try:  # without netns: the calling thread's namespace, inherited by the child
            self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except FileNotFoundError as exc:
            raise CaptureError(f"cannot capture on {self.where}: {exc.filename} is not "
                               "installed (Debian package tcpdump)") from exc
        self._reader = threading.Thread(target=self._read_stderr, daemon=True,
                                        name=f"tcpdump-{self.interface}")
        self._reader.start()
        if not self._listening.wait(timeout):
            self._kill()
            raise CaptureError(f"tcpdump did not start listening on {self.where} within "
                               f"{timeout:g} s: {self._stderr_text()}")
        if not self._heard_listening:  # stderr closed first: tcpdump is exiting
            self._kill()
            if self._reader is not None:
                self._reader.join(timeout)
            self._process = None
            raise CaptureError(f"tcpdump could not capture on {self.where}: "
                               f"{self._stderr_text()}")
        return self

    def _read_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for raw in self._process.stderr:
            line = raw.decode(errors="replace").rstrip()
            self._stderr.append(line)
            if "listening on" in line:
                self._heard_listening = True
                self._listening.set()
            words = line.split()
            if len(words) >= 3 and words[0].isdigit() and words[1] == "packets":
                if words[2] == "captured":
                    self.packets_captured = int(words[0])
                elif words[2] == "dropped":
                    self.packets_dropped = int(words[0])
        self._listening.set()  # tcpdump exited: wake start() so it can report why

    def _stderr_text(self) -> str:
        return " | ".join(self._stderr[-6:]) or "(no output)"

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def stop(self, timeout: float = 5.0) -> Path:
        """Stop tcpdump (SIGINT: it flushes the file) and return the pcap's path."""
        process = self._process
        if process is None:
            return self.path
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill()
                raise CaptureError(f"tcpdump on {self.where} did not stop within "
                                   f"{timeout:g} s after SIGINT") from None
        if self._reader is not None:
            self._reader.join(timeout)
        self._process = None
        if not self.path.is_file():
            raise CaptureError(f"tcpdump on {self.where} wrote no file {str(self.path)!r}: "
                               f"{self._stderr_text()}")
        return self.path

    def __enter__(self) -> PacketCapture:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # --- per-phone pcaps -------------------------------------------------------------

    def addresses_of(self, mac: str) -> set[str]:
        """The IPv4 addresses ``mac`` used or was given (DHCP yiaddr) in the capture."""
        return _addresses_of(self.path, normalize_mac(mac))

    def split(self, mac: str, path: str | Path | None = None, *,
              ips: Iterable[str] = ()) -> Path:
        """Write the frames of the phone with this MAC to a pcap and return its path.

        Kept: frames from or to the MAC; broadcasts about it (DHCP with its chaddr, ARP
        for its addresses, IP broadcasts from/to its addresses). Its addresses are those
        seen in the capture plus ``ips``. Default path: ``<capture>-<mac>.pcap``.
        """
        mac = normalize_mac(mac)
        if self._process is not None:
            raise CaptureError(f"capture on {self.where} is still running: stop() it first")
        if not self.path.is_file():
            raise CaptureError(f"no capture file {str(self.path)!r} to split")
        out = Path(path) if path is not None else self.path.with_name(
            f"{self.path.stem}-{mac.replace(':', '')}.pcap")
        addresses = _addresses_of(self.path, mac) | set(ips)
        _write_frames_of(self.path, out, mac, addresses)
        return out


def _layers() -> tuple[Any, Any, Any, Any, Any, Any]:
    # Imported on use: scapy costs ~0.5 s to import (LAB-NOTES.md).
    from scapy.layers.dhcp import BOOTP
    from scapy.layers.inet import IP
    from scapy.layers.l2 import ARP, Ether
    from scapy.utils import PcapReader, PcapWriter

    return Ether, ARP, IP, BOOTP, PcapReader, PcapWriter


def _chaddr(bootp: Any) -> str:
    raw = bytes(bootp.chaddr)[:6]
    return ":".join(f"{b:02x}" for b in raw)


def _addresses_of(pcap: Path, mac: str) -> set[str]:
    Ether, ARP, IP, BOOTP, PcapReader, _ = _layers()
    found: set[str] = set()
    with PcapReader(str(pcap)) as reader:
        _check_linktype(reader, pcap)
        for frame in reader:
            if Ether not in frame:
                continue
            if frame[Ether].src.lower() == mac:
                if IP in frame and frame[IP].src != "0.0.0.0":
                    found.add(frame[IP].src)
                if ARP in frame and frame[ARP].psrc != "0.0.0.0":
                    found.add(frame[ARP].psrc)
            if BOOTP in frame and frame[BOOTP].op == 2 and _chaddr(frame[BOOTP]) == mac:
                if frame[BOOTP].yiaddr != "0.0.0.0":
                    found.add(frame[BOOTP].yiaddr)
    return found


def _check_linktype(reader: Any, pcap: Path) -> None:
    linktype = getattr(reader, "linktype", DLT_EN10MB)
    if linktype != DLT_EN10MB:
        raise CaptureError(f"{str(pcap)!r} has link type {linktype}, not Ethernet: capture a "
                           "bridge or Ethernet interface (not 'any') to split per MAC")


def _write_frames_of(pcap: Path, out: Path, mac: str, addresses: set[str]) -> None:
    Ether, ARP, IP, BOOTP, PcapReader, PcapWriter = _layers()
    with PcapReader(str(pcap)) as reader:
        _check_linktype(reader, pcap)
        writer = PcapWriter(str(out), linktype=DLT_EN10MB, sync=False)
        try:
            writer.write_header(None)
            for frame in reader:
                if Ether in frame and _belongs(frame, mac, addresses, Ether, ARP, IP, BOOTP):
                    writer.write(frame)
        finally:
            writer.close()


def _belongs(frame: Any, mac: str, addresses: set[str], Ether: Any, ARP: Any, IP: Any,
             BOOTP: Any) -> bool:
    ether = frame[Ether]
    src, dst = ether.src.lower(), ether.dst.lower()
    if mac in (src, dst):
        return True
    if not int(dst.split(":")[0], 16) & 1:  # unicast between two other stations
        return False
    if BOOTP in frame and _chaddr(frame[BOOTP]) == mac:
        return True
    if ARP in frame and (frame[ARP].pdst in addresses or frame[ARP].psrc in addresses):
        return True
    return IP in frame and (frame[IP].src in addresses or frame[IP].dst in addresses)


_PCAP_MAGIC = {b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
               b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9)}
#: pcap global header for Ethernet, used when the capture has not written its own yet
_DEFAULT_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, DLT_EN10MB)


class PcapTail:
    """Slices a pcap that a running tcpdump (``-U``: one flush per packet) keeps growing.

    One capture per phone for a whole run, and each case's evidence copied out of it by
    time, costs a file read per case instead of starting and stopping tcpdump per case
    (~80 ms on the case's critical path). Each :meth:`slice` reads only what was appended
    since the previous one; a record tcpdump has not finished writing is left for the next.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.offset = 0
        self.header: bytes | None = None
        self._endian = "<"
        self._unit = 1e-6

    def slice(self, since: float, target: str | Path) -> int:
        """Write the packets captured at or after ``since`` (``time.time()`` clock) and
        appended since the last call to ``target`` (a pcap file); return their count."""
        records: list[bytes] = []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        pos = 0
        if self.header is None and len(data) >= 24:
            magic = data[:4]
            if magic not in _PCAP_MAGIC:
                raise CaptureError(f"{self.path}: not a pcap file (magic {magic.hex()})")
            self._endian, self._unit = _PCAP_MAGIC[magic]
            self.header, pos = data[:24], 24
        if self.header is not None:
            record = struct.Struct(self._endian + "IIII")
            while len(data) - pos >= 16:
                sec, frac, incl, _orig = record.unpack_from(data, pos)
                end = pos + 16 + incl
                if end > len(data):
                    break
                if sec + frac * self._unit >= since:
                    records.append(data[pos:end])
                pos = end
        self.offset += pos
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as out:
            out.write(self.header or _DEFAULT_HEADER)
            out.writelines(records)
        return len(records)
