"""net-snmp ``snmpd`` as an independent SNMP peer: an APC outlet table and a PoE port table.

snmpd speaks SNMP; ``outlet_agent.py`` (a ``pass_persist`` handler) holds the writable
tables in JSON files a test can read: the APC PowerNet ``sPDUOutletCtl`` column and the
RFC 3621 ``pethPsePortAdminEnable`` column.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from framework.netns import Netns
from tests.rig.waiting import wait_until

APC_BASE = "1.3.6.1.4.1.318.1.1.4.4.2.1.3"
POE_BASE = "1.3.6.1.2.1.105.1.1.1.3"
AGENT = Path(__file__).with_name("outlet_agent.py")


@dataclass
class SnmpPeer:
    """A running snmpd: where it listens and its tables."""

    netns: Netns
    host: str
    port: int
    community: str
    apc_state: Path
    poe_state: Path
    log: Path

    def table(self, which: str) -> dict[str, int]:
        path = self.apc_state if which == "apc" else self.poe_state
        return {k: int(v) for k, v in json.loads(path.read_text())["values"].items()}

    def sets(self, which: str) -> list[tuple[str, int]]:
        path = self.apc_state if which == "apc" else self.poe_state
        return [(s, v) for s, v in json.loads(path.read_text()).get("sets", [])]

    def preset(self, which: str, values: dict[str, int]) -> None:
        path = self.apc_state if which == "apc" else self.poe_state
        base = APC_BASE if which == "apc" else POE_BASE
        path.write_text(json.dumps({"base": base, "values": values}))

    def snmpget(self, oid: str) -> str:
        """Read ``oid`` with net-snmp's own ``snmpget`` (value only)."""
        proc = self.netns.run(["snmpget", "-v2c", "-c", self.community, "-Oqv", "-t", "1",
                               "-r", "0", f"{self.host}:{self.port}", oid], timeout=5)
        return (proc.stdout or proc.stderr).strip()


@contextmanager
def snmpd(netns: Netns, host: str, port: int, community: str, workdir: Path,
          apc_outlets: int = 8, poe_ports: int = 4) -> Iterator[SnmpPeer]:
    """Run snmpd in ``netns`` on ``host:port`` with read-write ``community``."""
    if shutil.which("snmpd") is None:
        raise RuntimeError("snmpd is not installed (Debian package snmpd)")
    workdir.mkdir(parents=True, exist_ok=True)
    peer = SnmpPeer(netns, host, port, community, workdir / "apc.json", workdir / "poe.json",
                    workdir / "snmpd.log")
    peer.preset("apc", {str(i): 1 for i in range(1, apc_outlets + 1)})
    peer.preset("poe", {f"1.{i}": 1 for i in range(1, poe_ports + 1)})
    conf = workdir / "snmpd.conf"
    conf.write_text(
        f"agentAddress udp:{host}:{port}\n"
        f"rwcommunity {community} default\n"
        f"pass_persist .{APC_BASE} {sys.executable} {AGENT} {peer.apc_state} 1,2,3\n"
        f"pass_persist .{POE_BASE} {sys.executable} {AGENT} {peer.poe_state} 1,2\n")
    proc = netns.popen(["snmpd", "-f", "-C", "-c", str(conf), "-Lf", str(peer.log),
                        "-p", str(workdir / "snmpd.pid"), "-M", "/nonexistent", "-m", ""],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: proc.poll() is not None or
                   peer.snmpget(f"{APC_BASE}.1") in ("1", "2"),
                   5, f"snmpd answering on {host}:{port}")
        if proc.poll() is not None:
            raise RuntimeError(f"snmpd exited {proc.returncode}: "
                               f"{peer.log.read_text() if peer.log.exists() else ''}")
        yield peer
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
