"""Test peers for the simulated rig: the sim lab via its CLI, Kea, independent servers,
console taps. Everything runs in namespaces prefixed ``hilt-m`` and talks to the sim only
over the wire, as the framework would.
"""

from __future__ import annotations

import json
import os
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from framework.netns import Netns

# Every name starts with hilt-m; the pid keeps two test runs on one machine apart.
PREFIX_ROOT = "hilt-m"
PREFIX = f"{PREFIX_ROOT}-{os.getpid()}"
LAB_NS = f"{PREFIX}-lab"
BRIDGE = "br-lab"
LAB_IP = "192.0.2.1"
PDU_IP = "192.0.2.250"
TS_IP = "192.0.2.251"
PASSWORD_VAR = "HILT_M_PHONE_PASSWORD"
COMMUNITY_VAR = "HILT_M_SNMP_COMMUNITY"
ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
T = TypeVar("T")


# -- rig files --------------------------------------------------------------------------

@dataclass(frozen=True)
class PhoneEntry:
    """One phone of a test rig (outlet and console ports follow the rig order)."""

    name: str
    model: str = "440HD"
    mac: str = ""
    address: str = ""
    firmware: str = "2.2.8.61"
    deviations: tuple[str, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)
    boot_time_s: float | None = None
    late_request_s: float | None = None


def phones(count: int, models: Sequence[str] = ("440HD",), **kwargs: Any) -> list[PhoneEntry]:
    """``count`` phones ph1..phN with MACs 00:90:8F:00:00:0N and addresses 192.0.2.(10+N)."""
    return [PhoneEntry(name=f"ph{i}", model=models[(i - 1) % len(models)],
                       mac=f"00:90:8F:00:00:{i:02X}", address=f"192.0.2.{10 + i}", **kwargs)
            for i in range(1, count + 1)]


def rig_document(entries: Sequence[PhoneEntry], **sim: Any) -> dict[str, Any]:
    """A rig (same schema as rigs/sim.yaml) for these phones, namespaces prefixed PREFIX."""
    sim_phones: dict[str, Any] = {}
    for p in entries:
        knobs: dict[str, Any] = {"deviations": list(p.deviations)}
        if p.settings:
            knobs["settings"] = dict(p.settings)
        if p.boot_time_s is not None:
            knobs["boot_time_s"] = p.boot_time_s
        if p.late_request_s is not None:
            knobs["late_request_s"] = p.late_request_s
        sim_phones[p.name] = knobs
    return {
        "name": "sim-test", "description": "tests/sim rig",
        "lab": {"netns": LAB_NS, "interface": BRIDGE, "address": f"{LAB_IP}/24",
                "pool": {"start": "192.0.2.100", "end": "192.0.2.199"}, "lease_time": 600},
        "pdus": [{"name": "pdu1", "driver": "apc-snmp", "host": PDU_IP, "port": 161,
                  "community": {"env": COMMUNITY_VAR}, "outlets": max(8, len(entries))}],
        "phones": [{
            "name": p.name, "model": p.model, "mac": p.mac, "address": p.address,
            "firmware": p.firmware, "power": {"pdu": "pdu1", "outlet": i},
            "console": {"serial": {"url": f"socket://{TS_IP}:{7000 + i}"}, "ssh": {"port": 22}},
            "credentials": {"username": "admin", "password": {"env": PASSWORD_VAR}},
        } for i, p in enumerate(entries, start=1)],
        "sim": {"prefix": PREFIX, "terminal_server_address": TS_IP, "boot_time_s": 0.05,
                "phones": sim_phones, **sim},
    }


# -- waiting on output ------------------------------------------------------------------

class Transcript:
    """Lines (or bytes) arriving from a peer, with waits that name what they awaited."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: list[Any] = []
        self.stamps: list[float] = []   # time.time() when each item arrived
        self.cond = threading.Condition()

    def add(self, item: Any) -> None:
        with self.cond:
            self.items.append(item)
            self.stamps.append(time.time())
            self.cond.notify_all()

    def stamped(self, mark: int = 0) -> list[tuple[float, Any]]:
        """Items since ``mark`` with their arrival times."""
        with self.cond:
            return list(zip(self.stamps[mark:], self.items[mark:], strict=True))

    def mark(self) -> int:
        with self.cond:
            return len(self.items)

    def since(self, mark: int = 0) -> list[Any]:
        with self.cond:
            return list(self.items[mark:])

    def wait_for(self, predicate: Callable[[list[Any]], T], timeout: float, what: str,
                 since: int = 0) -> T:
        """Wait until ``predicate(items since mark)`` is truthy; TimeoutError naming ``what``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                value = predicate(self.items[since:])
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    tail = "".join(str(i) for i in self.items[-12:])[-800:]
                    raise TimeoutError(f"{self.name}: timed out after {timeout:g} s waiting for "
                                       f"{what}; last output:\n{tail}")
                self.cond.wait(left)


def follow(proc: subprocess.Popen[str], transcript: Transcript,
           parse: Callable[[str], Any] = lambda line: line) -> threading.Thread:
    """Feed a process's output lines (parsed; None = skipped, a list = several) into a
    transcript."""
    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            item = parse(line.rstrip("\n"))
            for one in item if isinstance(item, list) else [item]:
                if one is not None:
                    transcript.add(one)
    thread = threading.Thread(target=pump, daemon=True, name=f"follow-{transcript.name}")
    thread.start()
    return thread


def lab_popen(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[str]:
    return Netns(LAB_NS).popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, **kwargs)


def stop_process(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- the sim lab, started through its CLI -----------------------------------------------

class SimLabRun:
    """A simulated bench started with ``python -m framework.sim up`` and stopped with ``down``."""

    def __init__(self, workdir: Path, entries: Sequence[PhoneEntry], **sim: Any) -> None:
        self.workdir = workdir
        self.entries = list(entries)
        self.rig = workdir / "rig.yaml"
        self.rig.write_text(yaml.safe_dump(rig_document(entries, **sim), sort_keys=False))
        self.secrets = workdir / "secrets.env"
        self.env = {k: v for k, v in os.environ.items()
                    if k not in (PASSWORD_VAR, COMMUNITY_VAR)}
        self.env["HIL_SECRETS_FILE"] = str(self.secrets)
        self.up_seconds = 0.0
        self.up_output = ""

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PYTHON, "-m", "framework.sim", *args, "--rig", str(self.rig)],
                              capture_output=True, text=True, env=self.env, cwd=ROOT,
                              timeout=timeout)

    def up(self) -> SimLabRun:
        began = time.monotonic()
        proc = self.cli("up")
        self.up_seconds = time.monotonic() - began
        self.up_output = proc.stdout + proc.stderr
        if proc.returncode != 0:
            self.down()
            raise RuntimeError(f"hil sim up failed ({proc.returncode}): {self.up_output}")
        return self

    def down(self) -> None:
        self.cli("down")

    def status(self) -> dict[str, Any]:
        return json.loads(self.cli("status", "--json").stdout)

    def secret(self, name: str) -> str:
        for line in self.secrets.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == name:
                return value
        raise KeyError(f"{name} not in {self.secrets}")

    @property
    def password(self) -> str:
        return self.secret(PASSWORD_VAR)

    @property
    def community(self) -> str:
        return self.secret(COMMUNITY_VAR)

    def entry(self, name: str) -> PhoneEntry:
        return next(p for p in self.entries if p.name == name)

    def index(self, name: str) -> int:
        return next(i for i, p in enumerate(self.entries, start=1) if p.name == name)


# -- Kea ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Reservation:
    """A Kea host reservation: fixed address and the raw options for this MAC."""

    mac: str
    address: str
    options: dict[int, bytes] = field(default_factory=dict)


class Kea:
    """ISC Kea DHCPv4 in the lab namespace, reconfigured through its control socket."""

    _count = 0

    def __init__(self, workdir: Path) -> None:
        Kea._count += 1
        self.workdir = workdir
        self.socket_path = f"/tmp/hilt-m-kea-{os.getpid()}-{Kea._count}.sock"
        self.log = Transcript("kea")
        self.proc: subprocess.Popen[str] | None = None

    def config(self, reservations: Iterable[Reservation], valid_lifetime: int = 600,
               renew_timer: int | None = None) -> dict[str, Any]:
        subnet: dict[str, Any] = {
            "id": 1, "subnet": "192.0.2.0/24", "pools": [{"pool": "192.0.2.100-192.0.2.199"}],
            "reservations": [{
                "hw-address": r.mac.lower(), "ip-address": r.address,
                "option-data": [{"code": code, "space": "dhcp4", "csv-format": False,
                                 "data": value.hex()} for code, value in r.options.items()],
            } for r in reservations]}
        dhcp4: dict[str, Any] = {
            "interfaces-config": {"interfaces": [BRIDGE], "dhcp-socket-type": "raw"},
            "control-socket": {"socket-type": "unix", "socket-name": self.socket_path},
            "lease-database": {"type": "memfile", "persist": False},
            "valid-lifetime": valid_lifetime,
            # Kea re-encodes Option 43 as vendor sub-options (a plain URL string goes out
            # empty); redefined as binary it carries the configured bytes unchanged.
            "option-def": [{"name": "vendor-encapsulated-options", "code": 43,
                            "type": "binary", "space": "dhcp4"}],
            "option-data": [{"name": "domain-name-servers", "data": LAB_IP},
                            {"name": "routers", "data": LAB_IP}],
            "subnet4": [subnet],
            "loggers": [{"name": "kea-dhcp4", "output_options": [{"output": "stdout"}],
                         "severity": "INFO"}],
        }
        if renew_timer is not None:
            dhcp4["renew-timer"] = renew_timer
            dhcp4["rebind-timer"] = max(renew_timer + 1, valid_lifetime * 7 // 8)
        return {"Dhcp4": dhcp4}

    def start(self, reservations: Iterable[Reservation] = (), **kwargs: Any) -> Kea:
        path = self.workdir / f"kea-{Kea._count}.json"
        path.write_text(json.dumps(self.config(reservations, **kwargs)))
        env = {**os.environ, "KEA_LOCKFILE_DIR": str(self.workdir),
               "KEA_PIDFILE_DIR": str(self.workdir)}
        self.proc = lab_popen(["kea-dhcp4", "-c", str(path)], env=env)
        follow(self.proc, self.log)
        self.log.wait_for(lambda lines: any("DHCP4_STARTED" in x for x in lines), 10,
                          "Kea to report DHCP4_STARTED")
        return self

    def configure(self, reservations: Iterable[Reservation], **kwargs: Any) -> None:
        """Replace the configuration (``config-set``; leases are dropped)."""
        answer = self.command("config-set", self.config(reservations, **kwargs))
        assert answer.get("result") == 0, f"Kea config-set failed: {answer}"

    def command(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        request = {"command": command, **({"arguments": arguments} if arguments else {})}
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(self.socket_path)
            sock.sendall(json.dumps(request).encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        answer = json.loads(data)
        return answer[0] if isinstance(answer, list) else answer

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
        Path(self.socket_path).unlink(missing_ok=True)


# -- independent provisioning servers ---------------------------------------------------

@dataclass(frozen=True)
class Seen:
    """One request as an independent server saw it."""

    protocol: str
    client: str
    name: str
    host: str | None = None
    user_agent: str | None = None
    sni: str | None = None
    time: float | None = None   # the server's clock when the request arrived (TFTP, HTTP)


# dnslib's resolver prints from one thread per query, so two records can share a line.
_DNS_LINE = re.compile(r"Request: \[([\d.]+):\d+\] \(udp\) / '([^']*)\.' \((\w+)\)")
_FTP_LINE = re.compile(r"([\d.]+):\d+-\[[^\]]*\] <- (RETR|SIZE|USER) (.*)$")
_BUSYBOX_LINE = re.compile(r"^([\d.]+):\d+: url:(\S+)")


class Witnesses:
    """Servers we did not write, in the lab namespace, each reporting what it was asked.

    TFTP: fbtftp; HTTP/HTTPS: stdlib http.server (+ssl) (both via witness_server.py);
    FTP: pyftpdlib's own CLI; DNS: dnslib's fixedresolver CLI (every name -> 192.0.2.1);
    busybox httpd as a second HTTP server.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.seen = Transcript("witnesses")
        self.procs: list[subprocess.Popen[str]] = []
        self.ready = Transcript("witness start-up")

    def _start(self, argv: Sequence[str], parse: Callable[[str], Any], ready: str) -> None:
        proc = lab_popen(argv)
        self.procs.append(proc)
        mark = self.ready.mark()
        follow(proc, self.seen, self._reader(parse))
        self.ready.wait_for(lambda lines: ready in lines, 10, f"{ready} server to start",
                            since=mark)

    def _reader(self, parse: Callable[[str], Any]) -> Callable[[str], Any]:
        def read(line: str) -> Any:
            if line.startswith('{"ready"'):
                self.ready.add(json.loads(line)["ready"])
                return None
            for marker, name in (("starting FTP server", "ftp"),
                                 ("Starting Fixed Resolver", "dns")):
                if marker in line:
                    self.ready.add(name)
                    return None
            return parse(line)
        return read

    @staticmethod
    def _json(line: str) -> Seen | None:
        if not line.startswith("{"):
            return None
        record = json.loads(line)
        return Seen(record["protocol"], record["client"], record["name"], record.get("host"),
                    record.get("user_agent"), record.get("sni"), record.get("time"))

    def http(self, port: int = 80) -> Witnesses:
        self._start([PYTHON, str(ROOT / "tests/sim/witness_server.py"), "http", "--address",
                     LAB_IP, "--port", str(port), "--root", str(self.root)], self._json, "http")
        return self

    def https(self, cert: Path, key: Path) -> Witnesses:
        self._start([PYTHON, str(ROOT / "tests/sim/witness_server.py"), "http", "--address",
                     LAB_IP, "--port", "443", "--root", str(self.root), "--cert", str(cert),
                     "--key", str(key)], self._json, "https")
        return self

    def tftp(self) -> Witnesses:
        self._start([PYTHON, str(ROOT / "tests/sim/witness_server.py"), "tftp", "--address",
                     LAB_IP, "--root", str(self.root)], self._json, "tftp")
        return self

    def ftp(self, user: str | None = None, password: str | None = None,
            port: int = 21) -> Witnesses:
        argv = [PYTHON, "-u", "-m", "pyftpdlib", "-i", LAB_IP, "-p", str(port), "-d",
                str(self.root), "-D"]
        if user:
            argv += ["-u", user, "-P", password or ""]

        def parse(line: str) -> Seen | None:
            match = _FTP_LINE.search(line)
            if match and match.group(2) == "RETR":
                return Seen("ftp", match.group(1), match.group(3))
            if match and match.group(2) == "USER":
                return Seen("ftp-user", match.group(1), match.group(3))
            return None
        self._start(argv, parse, "ftp")
        return self

    def dns(self, answer: str = LAB_IP) -> Witnesses:
        def parse(line: str) -> list[Seen]:
            return [Seen("dns", m.group(1), m.group(2)) for m in _DNS_LINE.finditer(line)]
        self._start([PYTHON, "-u", "-m", "dnslib.fixedresolver", "-a", LAB_IP, "-p", "53",
                     "-r", f". 60 IN A {answer}"], parse, "dns")
        return self

    def busybox_http(self, port: int = 8080) -> Witnesses:
        def parse(line: str) -> Seen | None:
            match = _BUSYBOX_LINE.search(line)
            return Seen("http", match.group(1), match.group(2)) if match else None
        proc = lab_popen(["busybox", "httpd", "-f", "-vv", "-p", f"{LAB_IP}:{port}", "-h",
                          str(self.root)])
        self.procs.append(proc)
        follow(proc, self.seen, parse)
        wait_port(LAB_IP, port, 10, "busybox httpd to listen")
        return self

    def requests(self, client: str, since: int = 0,
                 protocols: Iterable[str] = ("tftp", "http", "https", "ftp")) -> list[Seen]:
        wanted = set(protocols)
        return [s for s in self.seen.since(since) if s.client == client and s.protocol in wanted]

    def names(self, client: str, since: int = 0,
              protocols: Iterable[str] = ("tftp", "http", "https", "ftp")) -> list[tuple[str, str]]:
        return [(s.protocol, s.name) for s in self.requests(client, since, protocols)]

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)


def wait_port(host: str, port: int, timeout: float, what: str) -> None:
    """Connect attempts until the port accepts (in the lab namespace)."""
    deadline = time.monotonic() + timeout
    while True:
        with Netns(LAB_NS).entered():
            sock = socket.socket()
        try:
            sock.settimeout(0.5)
            sock.connect((host, port))
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}") from None
            time.sleep(0.02)
        finally:
            sock.close()


# -- consoles -------------------------------------------------------------------------------

class ConsoleTap:
    """A raw TCP connection to a phone's serial line on the terminal server (from the lab)."""

    def __init__(self, port: int, name: str = "console") -> None:
        with Netns(LAB_NS).entered():
            self.sock = socket.create_connection((TS_IP, port), timeout=5)
        self.sock.settimeout(None)  # an idle line is no error: the reader waits for output
        self.output = Transcript(name)
        self.text = ""
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            if not data:
                return
            self.output.add(data.decode("utf-8", "replace"))

    def mark(self) -> int:
        return self.output.mark()

    def wait_text(self, text: str, timeout: float = 10, since: int = 0) -> str:
        return self.output.wait_for(lambda chunks: text in "".join(chunks) and "".join(chunks),
                                    timeout, repr(text), since=since)

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def login(self, password: str, user: str = "admin", timeout: float = 10) -> None:
        """From anywhere: an empty line shows the login prompt (or the shell prompt)."""
        mark = self.mark()
        self.send("\r")
        seen = self.output.wait_for(
            lambda c: ("login: " in "".join(c) or "~]$ " in "".join(c)) and "".join(c),
            timeout, "login or shell prompt", since=mark)
        if "~]$ " in seen.rsplit("\r\n", 1)[-1]:
            return
        mark = self.mark()
        self.send(user + "\r")
        self.wait_text("Password: ", timeout, mark)
        mark = self.mark()
        self.send(password + "\r")
        self.wait_text("~]$ ", timeout, mark)

    def run(self, command: str, timeout: float = 10) -> str:
        """A shell command's output (prompt must be showing)."""
        mark = self.mark()
        self.send(command + "\r")
        text = self.output.wait_for(
            lambda c: "".join(c).count("~]$ ") >= 1 and "".join(c), timeout,
            f"output of {command!r}", since=mark)
        body = text.split("\r\n", 1)[1] if "\r\n" in text else ""
        return body.rsplit("[", 1)[0]

    def close(self) -> None:
        self.sock.close()


# -- a scapy-free DHCP server, to check what the phone sends ---------------------------------

def dhcp_options(payload: bytes) -> dict[int, bytes]:
    """Options of a BOOTP payload (after the magic cookie), parsed with struct only."""
    options: dict[int, bytes] = {}
    i = 240
    while i < len(payload) and payload[i] != 255:
        if payload[i] == 0:
            i += 1
            continue
        code, length = payload[i], payload[i + 1]
        options[code] = options.get(code, b"") + payload[i + 2:i + 2 + length]
        i += 2 + length
    return options


def minimal_dhcp_server(offer: str, timeout: float, mac: str) -> dict[str, Any]:
    """Answer one DORA from a plain UDP socket in the lab namespace; return what was asked.

    Independent of scapy (the sim builds its packets with scapy): the DISCOVER's options
    are read with ``struct`` here.
    """
    with Netns(LAB_NS).entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    seen: dict[str, Any] = {}
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, BRIDGE.encode())
        sock.bind(("0.0.0.0", 67))
        deadline = time.monotonic() + timeout
        while "request" not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                raise TimeoutError(f"no DHCP {'REQUEST' if seen else 'DISCOVER'} within "
                                   f"{timeout} s")
            payload = sock.recv(2048)
            options = dhcp_options(payload)
            kind = options.get(53, b"\x00")[0]
            name = {1: "discover", 3: "request"}.get(kind)
            if name is None or payload[236:240] != b"\x63\x82\x53\x63" or \
                    payload[28:34] != bytes.fromhex(mac.replace(":", "")):
                continue
            seen[name] = options
            seen["chaddr"] = payload[28:34]
            reply_kind = 2 if kind == 1 else 5
            reply = bytearray(payload[:240])
            reply[0] = 2
            reply[16:20] = socket.inet_aton(offer)
            reply[20:24] = socket.inet_aton(LAB_IP)
            reply += bytes([53, 1, reply_kind, 54, 4]) + socket.inet_aton(LAB_IP)
            reply += bytes([1, 4, 255, 255, 255, 0, 51, 4]) + struct.pack("!I", 600)
            reply += bytes([255])
            sock.sendto(bytes(reply), ("255.255.255.255", 68))
    finally:
        sock.close()
    return seen


def lab_run(argv: Sequence[str], timeout: float = 10) -> subprocess.CompletedProcess[str]:
    return Netns(LAB_NS).run(list(argv), timeout=timeout)


# -- power through the simulated PDU (net-snmp, an independent SNMP manager) -----------------

OUTLET_CTL = "1.3.6.1.4.1.318.1.1.4.4.2.1.3"
OUTLET_NAME = "1.3.6.1.4.1.318.1.1.4.5.2.1.3"


def snmpset(community: str, outlet: int, value: int,
            timeout: float = 1) -> subprocess.CompletedProcess[str]:
    return lab_run(["snmpset", "-v2c", "-c", community, "-t", str(timeout), "-r", "1", PDU_IP,
                    f"{OUTLET_CTL}.{outlet}", "i", str(value)], timeout=15)


def snmpget(community: str, oid: str, timeout: float = 1) -> subprocess.CompletedProcess[str]:
    return lab_run(["snmpget", "-v2c", "-c", community, "-Oqv", "-t", str(timeout), "-r", "1",
                    PDU_IP, oid], timeout=15)


def power(run: SimLabRun, name: str, on: bool) -> None:
    proc = snmpset(run.community, run.index(name), 1 if on else 2)
    assert proc.returncode == 0, f"snmpset outlet {run.index(name)}: {proc.stderr.strip()}"


# -- DHCP on the wire, as tcpdump sees it -----------------------------------------------------

class DhcpWatch:
    """tcpdump on the lab bridge (an independent observer): one line per DHCP packet."""

    def __init__(self) -> None:
        self.lines = Transcript("tcpdump")
        self.proc = lab_popen(["tcpdump", "-i", BRIDGE, "-n", "-l", "--immediate-mode", "-Z",
                               "root", "udp port 67 or udp port 68"])
        follow(self.proc, self.lines)
        self.lines.wait_for(lambda lines: any("listening on" in x for x in lines), 10,
                            "tcpdump to start capturing")

    def wait_discover(self, mac: str, since: int, timeout: float = 10) -> str:
        """A broadcast DHCP request (DISCOVER/REQUEST from 0.0.0.0) from this MAC."""
        mac = mac.lower()
        return self.lines.wait_for(
            lambda lines: next((x for x in lines if "IP 0.0.0.0.68 > 255.255.255.255.67" in x
                                and f"Request from {mac}" in x), None),
            timeout, f"a DHCP DISCOVER from {mac}", since=since)

    def stop(self) -> None:
        stop_process(self.proc)


class BusyboxTelnet:
    """``busybox telnet`` (a client we did not write), typed into through its stdin; its
    output read as it comes (prompts end without a newline). ``proc`` is the started
    client: on loopback, or in the lab namespace (``Netns(...).popen``)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.output = Transcript("busybox telnet")
        threading.Thread(target=self._pump, daemon=True).start()

    @staticmethod
    def argv(host: str, port: int = 23) -> list[str]:
        return ["busybox", "telnet", host, str(port)]

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        while chunk := os.read(self.proc.stdout.fileno(), 4096):
            self.output.add(chunk.decode("utf-8", "replace"))

    def expect(self, text: str, since: int = 0) -> str:
        def seen(chunks: list[str]) -> str | None:
            joined = "".join(chunks)
            return joined if text in joined else None
        return self.output.wait_for(seen, 10, repr(text), since=since) or ""

    def type(self, line: str) -> int:
        mark = self.output.mark()
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        return mark

    def close(self) -> None:
        stop_process(self.proc)

