"""net-snmp ``snmpd`` as an independent SNMP peer: APC outlet tables and a PoE port table.

snmpd speaks SNMP (v1, v2c and v3 with a USM user); ``outlet_agent.py`` (a ``pass_persist``
handler) holds the writable tables in JSON files a test can read: the APC PowerNet
``sPDUOutletCtl`` column (AP79xx), the rPDU outlet group (AP89xx:
``rPDUOutletControlOutletCommand`` and ``rPDUOutletStatusOutletState``) and the RFC 3621
``pethPsePortAdminEnable`` column.
"""

from __future__ import annotations

import json
import os
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
RPDU_BASE = "1.3.6.1.4.1.318.1.1.12.3"
V3_USER, V3_AUTH_ONLY_USER = "hilt-v3", "hilt-v3-auth"
V3_AUTH_KEY, V3_PRIV_KEY = "auth-Lab-91c2e", "priv-Lab-5d07a"
POE_BASE = "1.3.6.1.2.1.105.1.1.1.3"
AGENT = Path(__file__).with_name("outlet_agent.py")


@dataclass
class SnmpPeer:
    """A running snmpd: where it listens and its tables."""

    netns: Netns
    host: str
    port: int
    community: str
    workdir: Path
    log: Path

    def _state(self, which: str) -> Path:
        return self.workdir / f"{which}.json"

    def table(self, which: str) -> dict[str, int]:
        """``which`` is ``apc`` (sPDUOutletCtl), ``rpdu`` (rPDU outlet group) or ``poe``."""
        data = json.loads(self._state(which).read_text())
        return {k: int(v) for k, v in data["values"].items()}

    def sets(self, which: str) -> list[tuple[str, int]]:
        return [(s, v) for s, v in json.loads(self._state(which).read_text()).get("sets", [])]

    def preset(self, which: str, values: dict[str, int]) -> None:
        base = {"apc": APC_BASE, "rpdu": RPDU_BASE, "poe": POE_BASE}[which]
        self._state(which).write_text(json.dumps({"base": base, "values": values}))

    def snmpget(self, oid: str, *, v3: bool = False) -> str:
        """Read ``oid`` with net-snmp's own ``snmpget`` (value only), v2c or as the v3 user."""
        auth = ["-v3", "-l", "authPriv", "-u", V3_USER, "-a", "SHA", "-A", V3_AUTH_KEY,
                "-x", "AES", "-X", V3_PRIV_KEY] if v3 else ["-v2c", "-c", self.community]
        proc = self.netns.run(["snmpget", *auth, "-Oqv", "-t", "1", "-r", "0",
                               f"{self.host}:{self.port}", oid], timeout=5)
        return (proc.stdout or proc.stderr).strip()


@contextmanager
def snmpd(netns: Netns, host: str, port: int, community: str, workdir: Path,
          apc_outlets: int = 8, poe_ports: int = 4) -> Iterator[SnmpPeer]:
    """Run snmpd in ``netns`` on ``host:port`` with read-write ``community``."""
    if shutil.which("snmpd") is None:
        raise RuntimeError("snmpd is not installed (Debian package snmpd)")
    workdir.mkdir(parents=True, exist_ok=True)
    peer = SnmpPeer(netns, host, port, community, workdir, workdir / "snmpd.log")
    peer.preset("apc", {str(i): 1 for i in range(1, apc_outlets + 1)})
    peer.preset("rpdu", {f"{column}.1.1.4.{i}": 1 for i in range(1, apc_outlets + 1)
                         for column in (3, 5)})
    peer.preset("poe", {f"1.{i}": 1 for i in range(1, poe_ports + 1)})
    conf = workdir / "snmpd.conf"
    agent = f"{sys.executable} {AGENT}"
    conf.write_text(
        f"agentAddress udp:{host}:{port}\n"
        f"rwcommunity {community} default\n"
        f"createUser {V3_USER} SHA {V3_AUTH_KEY} AES {V3_PRIV_KEY}\n"
        f"rwuser {V3_USER} priv\n"
        f"createUser {V3_AUTH_ONLY_USER} MD5 {V3_AUTH_KEY}\n"
        f"rwuser {V3_AUTH_ONLY_USER} auth\n"
        f"pass_persist .{APC_BASE} {agent} {peer._state('apc')} 1,2,3\n"
        f"pass_persist .{RPDU_BASE} {agent} {peer._state('rpdu')} 1,2,3 rpdu\n"
        f"pass_persist .{POE_BASE} {agent} {peer._state('poe')} 1,2\n")
    # the engine ID and the localized v3 keys persist in workdir, not in /var/lib/snmp
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(workdir / "persist")}
    proc = netns.popen(["snmpd", "-f", "-C", "-c", str(conf), "-Lf", str(peer.log),
                        "-p", str(workdir / "snmpd.pid"), "-M", "/nonexistent", "-m", ""],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
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
