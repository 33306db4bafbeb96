"""ISC Kea behind the :class:`~framework.dhcp.base.DhcpBackend` contract: a server we did not write.

Why a second backend: a phone's provisioning result must not depend on quirks of our own
scapy server. Kea 2.2 (Debian ``kea-dhcp4-server``) runs as a subprocess, inside the lab
namespace when one is given, with ``KEA_LOCKFILE_DIR``/``KEA_PIDFILE_DIR`` in a private
temp dir, and is reconfigured with ``config-set`` on its unix control socket (~40 ms).

How the contract maps onto Kea:

- Per-MAC option sets are host reservations (by hw-address) whose option data is hex
  with ``csv-format: false`` and ``always-send: true`` (Kea otherwise sends only what the
  client asked for in option 55). Any code works this way, 160 included.
- Option 43: Kea parses option 43 as sub-options and rewrites it, so a per-MAC client
  class carries it instead, with Kea's documented class-local redefinition of option 43
  as ``binary``: the bytes go out as set (a plain URL or TLVs).
- The allowlist is the special ``DROP`` class, whose test drops every MAC not on it (and
  every MAC under the ``ignore`` knob); reservations carry only addresses and options.
- Kea owns the address plan: fixed addresses are reservations, the pool is a pool.
- Transcript: a packet socket in the namespace captures both directions on the wire
  (Kea's replies included), so records hold exactly what was sent and received.

What Kea cannot do or show (tests document each):

- Present-but-empty values for options Kea defines as strings (66, 67, 12, 15, 60, 160,
  ...): Kea refuses them; :meth:`KeaDhcpServer.set_options` raises naming the option.
- No option overload (RFC 2131 option 52): a reply over 576 bytes goes out as is, and
  BusyBox udhcpc 1.35 (which sends option 57 = 576) drops replies over about 656 bytes
  (measured: 655 accepted, 665 dropped). A 256-byte Option 160 plus 66/67/43 still fits.
- The transcript has no reasons: why Kea did not answer or NAKed is only in its log
  (:meth:`KeaDhcpServer.log_lines`). ``ignored`` is set from our allowlist and knob.
- Fault knobs other than ``ignore`` (delay, NAK on demand) do not exist for Kea.
"""

from __future__ import annotations

import collections
import glob
import json
import logging
import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from typing import IO, Any

from framework.dhcp.core import ServerCore
from framework.dhcp.kea_config import kea_config
from framework.dhcp.packet import (
    DhcpConfigError,
    DhcpMessageError,
    DhcpServerError,
    normalise_mac,
    parse_frame,
)
from framework.dhcp.settings import ServerSettings
from framework.dhcp.transcript import RECEIVED, SENT, DhcpMessageRecord
from framework.dhcp.wire import DHCP_FILTER, Wakeup, open_l2, receive
from framework.netns import Netns

log = logging.getLogger(__name__)

KEA_BINARY = "kea-dhcp4"
LEASE_CMDS_GLOBS = (
    "/usr/lib/*/kea/hooks/libdhcp_lease_cmds.so",
    "/usr/lib/kea/hooks/libdhcp_lease_cmds.so",
    "/usr/local/lib/kea/hooks/libdhcp_lease_cmds.so",
)
START_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0
LOG_LINES_KEPT = 2000


def find_lease_cmds_hook() -> str | None:
    """Path of Kea's lease_cmds hook library (for ``lease4-get-all``), if installed."""
    for pattern in LEASE_CMDS_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


class KeaDhcpServer(ServerCore):
    """ISC Kea DHCPv4 on one interface (optionally in a netns), driven over its control socket.

    Same settings and contract as :class:`framework.dhcp.server.DhcpServer`; see the
    module docstring for how each part maps onto Kea and what Kea cannot do.
    """

    BACKEND = "kea"

    def __init__(self, settings: ServerSettings, *, kea_binary: str = KEA_BINARY) -> None:
        super().__init__(settings)
        self.kea_binary = kea_binary
        self._log: collections.deque[str] = collections.deque(maxlen=LOG_LINES_KEPT)
        self._dir: str | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._sniffer: threading.Thread | None = None
        self._kea_started = threading.Event()
        self._kea_up = False
        self._sniffer_ready = threading.Event()
        self._sniffer_error: BaseException | None = None
        self._stopping = threading.Event()
        self._wake: Wakeup | None = None
        self._malformed = 0
        self._hook: str | None = None

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> KeaDhcpServer:
        """Start the capture and Kea; raises :class:`DhcpServerError` with Kea's own error."""
        if self._proc is not None:
            return self
        binary = shutil.which(self.kea_binary)
        if binary is None:
            raise DhcpServerError(f"{self.kea_binary} not found: install Debian package kea-dhcp4-server")
        self._hook = find_lease_cmds_hook()
        if self._hook is None:
            raise DhcpServerError(
                "Kea's lease_cmds hook (libdhcp_lease_cmds.so) not found in "
                f"{', '.join(LEASE_CMDS_GLOBS)}: install kea-dhcp4-server"
            )
        self._dir = tempfile.mkdtemp(prefix="hil-kea-")
        self._stopping.clear()
        try:
            self._start_sniffer()
        except DhcpServerError:
            self.stop()
            raise
        config_path = os.path.join(self._dir, "kea-dhcp4.json")
        with self._lock, open(config_path, "w", encoding="utf-8") as fh:
            json.dump(self._config(), fh, indent=2)
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "KEA_LOCKFILE_DIR": self._dir,
            "KEA_PIDFILE_DIR": self._dir,
        }
        argv = [binary, "-c", config_path]
        kwargs: dict[str, Any] = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      env=env, cwd=self._dir)
        self._kea_started.clear()
        self._kea_up = False
        if self.settings.netns is not None:
            self._proc = Netns(self.settings.netns).popen(argv, **kwargs)
        else:
            self._proc = subprocess.Popen(argv, **kwargs)
        assert self._proc.stdout is not None
        self._reader = threading.Thread(target=self._read_log, args=(self._proc.stdout,),
                                        name=f"kea-log-{self.settings.interface}", daemon=True)
        self._reader.start()
        started = self._kea_started.wait(START_TIMEOUT_S)
        # the reader also wakes us at EOF: Kea closed its output, so it is exiting even
        # when the process is not reaped yet (poll() may still say running)
        if not started or not self._kea_up or self._proc.poll() is not None:
            errors = [line for line in self._log if " ERROR " in line or " FATAL " in line]
            # "2026-.. ERROR [kea-dhcp4.dhcp4/pid.tid] DHCP4_X text" -> "DHCP4_X text"
            detail = "; ".join(line.split("] ", 1)[-1] for line in (errors or list(self._log))[-2:])
            detail = detail or "no output"
            self.stop()
            what = "exited" if started else f"did not report DHCP4_STARTED within {START_TIMEOUT_S:g} s"
            raise DhcpServerError(f"Kea on {self.settings.where()} {what}: {detail}")
        log.info("Kea DHCPv4 on %s as %s (pid %d)", self.settings.where(), self.settings.server_ip,
                 self._proc.pid)
        return self

    def stop(self) -> None:
        """Shut Kea down (``shutdown`` command, then SIGTERM/SIGKILL), stop the capture."""
        proc = self._proc
        if proc is not None:
            if proc.poll() is None:
                try:
                    self._command("shutdown")
                except (DhcpServerError, OSError) as exc:
                    log.warning("Kea shutdown command failed (%s); terminating pid %d", exc, proc.pid)
                    proc.terminate()
                try:
                    proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    log.error("Kea pid %d did not exit within %g s; killing it", proc.pid, STOP_TIMEOUT_S)
                    proc.kill()
                    proc.wait(STOP_TIMEOUT_S)
            if self._reader is not None:
                self._reader.join(STOP_TIMEOUT_S)
            self._proc = None
        self._stop_sniffer()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> KeaDhcpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read_log(self, stream: IO[str]) -> None:
        for line in stream:
            line = line.rstrip("\n")
            self._log.append(line)
            if "DHCP4_STARTED" in line:
                self._kea_up = True
                self._kea_started.set()
            if " ERROR " in line or " FATAL " in line:
                log.warning("kea: %s", line)
        self._kea_started.set()  # exited: wake start() so it reports the error at once

    def log_lines(self) -> list[str]:
        """Kea's recent log lines (INFO and above): the reasons the transcript cannot show."""
        return list(self._log)

    # --- the control socket -------------------------------------------------------------

    def _command(self, command: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._dir is None:
            raise DhcpServerError(f"Kea on {self.settings.where()} is not running")
        request: dict[str, Any] = {"command": command}
        if arguments is not None:
            request["arguments"] = arguments
        path = os.path.join(self._dir, "control.sock")
        chunks: list[bytes] = []
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(COMMAND_TIMEOUT_S)
            try:
                sock.connect(path)
                sock.sendall(json.dumps(request).encode())
                while True:  # Kea closes the connection after its answer
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    chunks.append(chunk)
            except OSError as exc:
                raise DhcpServerError(f"Kea control socket {path}: {command} failed: {exc}") from exc
        try:
            answer = json.loads(b"".join(chunks))
        except ValueError:
            raise DhcpServerError(f"Kea answered {command} with no JSON: {b''.join(chunks)[:200]!r}") from None
        if isinstance(answer, list):  # some Kea versions wrap answers in a list
            answer = answer[0]
        return dict(answer)

    def _apply(self) -> None:
        """Push the current state to Kea; Kea's refusal becomes :class:`DhcpConfigError`.

        ``config-test`` first: a failed ``config-set`` leaves Kea 2.2 serving nobody
        (DHCP4_CONFIG_UNRECOVERABLE_ERROR), so a refused option set must never reach it.
        """
        if self._proc is None:
            return  # applied at start
        config = self._config()
        for command in ("config-test", "config-set"):
            answer = self._command(command, config)
            if answer.get("result") != 0:
                raise DhcpConfigError(f"Kea refused the configuration: {answer.get('text', answer)}")

    def _config(self) -> dict[str, Any]:
        """The complete Kea configuration for the current allowlist, knobs and option sets."""
        assert self._dir is not None and self._hook is not None
        return kea_config(self.settings, answered=self._allow - self._ignore,
                          option_sets=self._options, workdir=self._dir, hook=self._hook)

    # --- per-MAC control ----------------------------------------------------------------

    def _change(self, mutate: Callable[[], object]) -> None:
        """Apply a state change and push it to Kea; if Kea refuses it, restore the previous
        state and re-raise (the allowlist, ignore knob and option sets are Kea's config)."""
        with self._lock:
            saved = (set(self._allow), set(self._ignore), dict(self._options))
            mutate()
            try:
                self._apply()
            except DhcpConfigError:
                self._allow, self._ignore, self._options = saved
                raise

    # --- what happened ------------------------------------------------------------------

    def leases(self) -> dict[str, str]:
        """Kea's current leases (``lease4-get-all``): MAC -> address."""
        answer = self._command("lease4-get-all")
        if answer.get("result") not in (0, 3):  # 3: no leases
            raise DhcpServerError(f"Kea lease4-get-all failed: {answer.get('text')}")
        now = time.time()
        found: dict[str, str] = {}
        for lease in answer.get("arguments", {}).get("leases", []):
            if lease.get("state", 0) != 0 or not lease.get("hw-address"):
                continue
            if lease.get("cltt", now) + lease.get("valid-lft", 0) < now:
                continue
            found[normalise_mac(lease["hw-address"])] = lease["ip-address"]
        return found

    def _describe_state(self) -> dict[str, Any]:
        return {"fault_knobs": {"ignore": sorted(self._ignore)}, "undecodable_frames": self._malformed}

    # --- the wire capture ---------------------------------------------------------------

    def _start_sniffer(self) -> None:
        self._wake = Wakeup()
        self._sniffer_ready.clear()
        self._sniffer_error = None
        name = f"kea-capture-{self.settings.interface}"
        if self.settings.netns is not None:
            self._sniffer = Netns(self.settings.netns).thread(self._capture, name=name)
        else:
            self._sniffer = threading.Thread(target=self._capture, name=name, daemon=True)
        self._sniffer.start()
        if not self._sniffer_ready.wait(START_TIMEOUT_S) or self._sniffer_error is not None:
            err = self._sniffer_error
            self._stop_sniffer()
            raise DhcpServerError(f"cannot capture DHCP on {self.settings.where()}: {err}")

    def _stop_sniffer(self) -> None:
        sniffer, wake = self._sniffer, self._wake
        if sniffer is None or wake is None:
            return
        self._stopping.set()
        wake.set()
        sniffer.join(STOP_TIMEOUT_S)
        self._sniffer = None
        wake.close()
        self._wake = None

    def _capture(self) -> None:
        try:
            sock = open_l2(self.settings.interface, DHCP_FILTER, outgoing=True)
        except BaseException as exc:
            self._sniffer_error = exc
            self._sniffer_ready.set()
            return
        self._sniffer_ready.set()
        server_ip = str(self.settings.server_ip)
        wake = self._wake
        assert wake is not None
        try:
            while not self._stopping.is_set():
                readable, _, _ = select.select([sock.ins.fileno(), wake.fileno()], [], [], 5.0)
                if sock.ins.fileno() not in readable:
                    continue
                data = receive(sock, 0)
                if data is None:
                    continue
                try:
                    frame = parse_frame(data)
                except DhcpMessageError as exc:
                    self._malformed += 1
                    log.debug("Kea capture: undecodable frame: %s", exc)
                    continue
                msg = frame.message
                if msg.op == 2:
                    note = "" if frame.src_ip == server_ip else f"reply from another server at {frame.src_ip}"
                    self._transcript.append(DhcpMessageRecord.from_message(
                        msg, direction=SENT if not note else RECEIVED, source=frame.src_ip,
                        destination=frame.dst_ip, note=note))
                    continue
                why = self._ignored_because(msg.mac)
                self._transcript.append(DhcpMessageRecord.from_message(
                    msg, direction=RECEIVED, source=frame.src_ip, destination=frame.dst_ip,
                    ignored=bool(why), note=why))
        finally:
            sock.close()
