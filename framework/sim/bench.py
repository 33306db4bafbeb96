"""The simulated bench as one process: namespaces, PDU, terminal server and virtual phones.

``serve(bench, ready)`` builds ``PREFIX-lab`` (the rig's lab bridge and address: "the
framework host on the lab network"), ``PREFIX-infra`` (one veth carrying the PDU and
terminal server addresses) and one namespace per phone (``eth0`` with the phone's MAC),
all on one bridge; starts the APC PDU agent and the terminal server in the infra
namespace and one ``VirtualPhone`` per phone (threads, not processes: far cheaper,
LAB-NOTES); reports readiness; then waits for SIGTERM/SIGINT/SIGHUP and tears everything
down, also when start-up fails half-way.

The state file ``/run/hil/sim-PREFIX.json`` (mode 0600; directory from ``HIL_RUN_DIR``)
records pid, namespaces, readiness and each phone's power, address, installed firmware
and settings: the sim's persistent state while it runs, and what ``hil sim down`` uses
to clean up after a process that died.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paramiko

from framework.netns import NamespaceError, Netns
from framework.rig import SecretError
from framework.sim.config import SimBench, SimConfigError
from framework.sim.console import SerialLine
from framework.sim.pdu import ApcPduAgent, OutletBoard, UsmUser
from framework.sim.phone import PhoneMemory, VirtualPhone, factory_settings
from framework.sim.state import (
    control_path,
    lab_namespaces,
    log_path,
    pid_alive,
    read_state,
    state_path,
    write_private,
)
from framework.sim.terminal_server import TerminalServer

log = logging.getLogger(__name__)


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise NamespaceError(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")


class SimLab:
    """Everything one simulated bench runs; ``start`` then ``stop`` (idempotent)."""

    def __init__(self, bench: SimBench) -> None:
        self.bench = bench
        self.lab = Netns(bench.lab_netns)
        self.infra = Netns(bench.infra_netns)
        self.lines = {p.spec.name: SerialLine(p.spec.name) for p in bench.phones}
        self.phones: dict[str, VirtualPhone] = {}
        self.agents: list[ApcPduAgent] = []
        self.boards: dict[str, OutletBoard] = {}
        self.terminal: TerminalServer | None = None
        self.control: FaultControl | None = None
        self.pdu_reachable = not bench.sim.pdu.unreachable
        self.ready = False
        self.started = datetime.now(UTC).isoformat(timespec="seconds")
        self._state_lock = threading.Lock()
        self._built = False

    # -- network ----------------------------------------------------------------------

    def build_network(self) -> None:
        """Lab bridge, infra veth, one veth per phone (created inside the namespaces)."""
        bench = self.bench
        lab = bench.rig.lab
        for name in lab_namespaces(bench.prefix):
            Netns(name).delete()  # leftovers of a lab that died (the caller checked no owner)
        self._built = True
        self.lab.create()
        self.lab.ip("link", "add", lab.interface, "type", "bridge")
        self.lab.ip("addr", "add", str(lab.address), "dev", lab.interface)
        self.lab.ip("link", "set", lab.interface, "up")
        self.infra.create()
        _ip("link", "add", "eth0", "netns", self.infra.name, "type", "veth",
            "peer", "name", "vinfra", "netns", self.lab.name)
        self._bridge("vinfra")
        prefix_len = lab.address.network.prefixlen
        self.infra.ip("addr", "add", f"{bench.sim.terminal_server_address}/{prefix_len}",
                      "dev", "eth0")
        for pdu in bench.pdus:
            self.infra.ip("addr", "add", f"{pdu.host}/{prefix_len}", "dev", "eth0")
        self.infra.ip("link", "set", "eth0", "up")
        for phone in bench.phones:
            Netns(phone.netns).create()
            _ip("link", "add", "eth0", "netns", phone.netns, "address", phone.spec.mac_colon,
                "type", "veth", "peer", "name", phone.veth, "netns", self.lab.name)
            self._bridge(phone.veth)

    def _bridge(self, port: str) -> None:
        self.lab.ip("link", "set", port, "master", self.bench.rig.lab.interface)
        self.lab.ip("link", "set", port, "up")

    # -- services ---------------------------------------------------------------------

    def start(self) -> None:
        """Build the network, start PDU, terminal server and phones (outlets on: boot)."""
        bench = self.bench
        try:
            passwords = {p.spec.name: p.spec.credentials.password.resolve()
                         for p in bench.phones}
            communities = {pdu.name: pdu.community.resolve() if pdu.community else None
                           for pdu in bench.pdus}
            usm_users = {pdu.name: UsmUser.from_rig(pdu.v3) for pdu in bench.pdus}
        except SecretError as exc:
            raise SimConfigError(f"{bench.source}: {exc}") from None
        self.build_network()
        self.save_state()
        for sim in bench.phones:
            memory = PhoneMemory(version=sim.spec.firmware, factory_settings=factory_settings(sim))
            self.phones[sim.spec.name] = VirtualPhone(
                sim, self.lines[sim.spec.name], memory,
                password=_constant(passwords[sim.spec.name]),
                ca_file=bench.sim.ca_file, host_key=paramiko.ECDSAKey.generate(),
                on_change=self.save_state)
        self.terminal = TerminalServer(self.infra, str(bench.sim.terminal_server_address),
                                       [(self.lines[p.spec.name], p.raw_port, p.rfc2217_port)
                                        for p in bench.phones])
        self.terminal.start()
        self.control = FaultControl(control_path(bench.prefix), self)
        self.control.start()
        for pdu in bench.pdus:
            plugged = {p.spec.power.outlet: self.phones[p.spec.name] for p in bench.phones
                       if p.spec.power.pdu == pdu.name}
            board = OutletBoard(
                pdu.outlets, {n: phone.name for n, phone in plugged.items()},
                switch=_switch(plugged), on_at_start=bench.sim.outlets_on_at_start,
                dead=bench.sim.pdu.dead_outlets, reboot_delay_s=bench.sim.pdu.reboot_delay_s)
            self.boards[pdu.name] = board
            agent = ApcPduAgent(self.infra, pdu.host, pdu.port, communities[pdu.name], board,
                                model=pdu.model, usm=usm_users[pdu.name])
            agent.start()  # it listens even while "unreachable": its address is off the wire
            self.agents.append(agent)
        self.set_pdu_reachable(self.pdu_reachable)
        for board in self.boards.values():
            board.apply_initial()
        self.ready = True
        self.save_state()

    # -- faults -----------------------------------------------------------------------

    def set_pdu_reachable(self, reachable: bool) -> None:
        """Unreachable = the PDU addresses are taken off the wire (ARP gets no answer)."""
        prefix_len = self.bench.rig.lab.address.network.prefixlen
        for pdu in self.bench.pdus:
            self.infra.ip("addr", "add" if reachable else "del", f"{pdu.host}/{prefix_len}",
                          "dev", "eth0", check=False)
        self.lab.ip("neigh", "flush", "dev", self.bench.rig.lab.interface, check=False)
        self.pdu_reachable = reachable
        self.save_state()

    def set_outlet_dead(self, pdu: str, outlet: int, dead: bool) -> None:
        board = self.boards.get(pdu)
        if board is None or not 1 <= outlet <= board.count:
            raise ValueError(f"no outlet {outlet} on PDU {pdu!r}")
        with board.lock:
            (board.dead.add if dead else board.dead.discard)(outlet)
        self.save_state()

    def stop(self) -> None:
        """Stop phones and services, delete the namespaces, remove the state file."""
        if self.control is not None:
            self.control.stop()
        for phone in self.phones.values():
            try:
                phone.power(False)
            except Exception:  # keep tearing down
                log.exception("stopping phone %s", phone.name)
        for agent in self.agents:
            agent.stop()
        if self.terminal is not None:
            self.terminal.stop()
        if self._built:
            for name in reversed(self.bench.namespaces):
                Netns(name).delete()
        state_path(self.bench.prefix).unlink(missing_ok=True)

    # -- state file -------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        bench = self.bench
        return {
            "prefix": bench.prefix, "pid": os.getpid(), "rig": str(Path(bench.source).resolve()),
            "started": self.started, "ready": self.ready, "namespaces": bench.namespaces,
            "log": str(log_path(bench.prefix)),
            "control": str(control_path(bench.prefix)),
            "pdus": {name: {"reachable": self.pdu_reachable,
                            "dead_outlets": sorted(board.dead),
                            "outlets": {str(n): "on" if s == 1 else "off"
                                        for n, s in board.state.items()}}
                     for name, board in self.boards.items()},
            "phones": {name: {"netns": p.sim.netns, "mac": p.mac, "model": p.model,
                              **p.status()} for name, p in self.phones.items()},
        }

    def save_state(self) -> None:
        with self._state_lock:
            write_private(state_path(self.bench.prefix), json.dumps(self.state(), indent=2))


PHONE_FAULTS = ("console-dead", "no-dhcp")
FAULTS = ("pdu-unreachable", "dead-outlet", *PHONE_FAULTS)


class FaultControl:
    """A unix socket (mode 0600) through which ``hil sim fault`` flips fault knobs at run time.

    One JSON request per connection, one JSON answer: ``{"fault": "pdu-unreachable",
    "on": true}``, ``{"fault": "dead-outlet", "pdu": "pdu1", "outlet": 3, "on": true}``,
    ``{"fault": "console-dead", "phone": "ph2", "on": true}`` (serial line and SSH go
    silent) or ``{"fault": "no-dhcp", "phone": "ph3", "on": true}`` (the phone's DHCP
    client stops sending; it stays hung until power loss or a reboot).
    This is test control of the simulated equipment, not a way around the wire: the
    framework still sees only SNMP timeouts or outlets that do not switch.
    """

    def __init__(self, path: Path, lab: SimLab) -> None:
        self.path = path
        self.lab = lab
        self.sock: socket.socket | None = None

    def start(self) -> None:
        self.path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        sock.listen(4)
        self.sock = sock
        threading.Thread(target=self._serve, args=(sock,), daemon=True,
                         name="fault-control").start()

    def stop(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        self.path.unlink(missing_ok=True)

    def _serve(self, sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    request = json.loads(conn.makefile("r").readline())
                    answer = self.handle(request)
                except (ValueError, KeyError, TypeError, OSError) as exc:
                    answer = {"ok": False, "error": str(exc)}
                try:
                    conn.sendall((json.dumps(answer) + "\n").encode())
                except OSError:
                    pass

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        fault, on = request["fault"], bool(request["on"])
        if fault == "pdu-unreachable":
            self.lab.set_pdu_reachable(not on)
        elif fault == "dead-outlet":
            pdus = [p.name for p in self.lab.bench.pdus]
            self.lab.set_outlet_dead(request.get("pdu") or pdus[0], int(request["outlet"]), on)
        elif fault in PHONE_FAULTS:
            name = request.get("phone")
            phone = self.lab.phones.get(name or "")
            if phone is None:
                raise ValueError(f"{fault} needs --phone, one of {sorted(self.lab.phones)}"
                                 f" (got {name!r})")
            (phone.set_console_dead if fault == "console-dead" else phone.set_dhcp_silent)(on)
        else:
            raise ValueError(f"unknown fault {fault!r} ({', '.join(FAULTS)})")
        log.info("fault %s %s%s", fault, "on" if on else "off",
                 f" on {request['phone']}" if request.get("phone") else "")
        return {"ok": True}


def _constant(value: str) -> Callable[[], str]:
    return lambda: value


def _switch(plugged: dict[int, VirtualPhone]) -> Callable[[int, bool], None]:
    def switch(outlet: int, on: bool) -> None:
        phone = plugged.get(outlet)
        if phone is not None:
            phone.power(on)
    return switch


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


def serve(bench: SimBench, ready: Callable[[str], None]) -> int:
    """Run the lab until a stop signal; ``ready`` gets ``"ready"`` or ``"error: ..."``.

    Stop signals are blocked in every thread and taken synchronously by the main thread
    (``sigwaitinfo``), so teardown runs exactly once, in order, whatever thread was busy.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    prefix = bench.prefix
    previous = read_state(prefix)
    if previous and previous.get("pid") != os.getpid() and pid_alive(int(previous["pid"])):
        ready(f"error: a sim lab with prefix {prefix!r} is already running "
              f"(pid {previous['pid']}); run `hil sim down` first")
        return 1
    lab = SimLab(bench)
    began = time.monotonic()
    try:
        lab.start()
    except (SimConfigError, NamespaceError, RuntimeError, OSError) as exc:
        log.error("start-up failed: %s", exc)
        lab.stop()
        ready(f"error: {exc}")
        return 1
    except BaseException:
        log.exception("start-up failed")
        lab.stop()
        ready("error: start-up failed (see the log)")
        raise
    log.info("sim lab %s ready in %.2f s: %d phones", prefix, time.monotonic() - began,
             len(lab.phones))
    ready("ready")
    try:
        received = signal.sigwaitinfo(STOP_SIGNALS)
        log.info("signal %s: tearing down", signal.Signals(received.si_signo).name)
    finally:
        lab.stop()
    return 0
