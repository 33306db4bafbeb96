"""Foreign DHCP servers as they really behave: busybox udhcpd and dnsmasq with their
defaults (each checks an address before offering it: udhcpd ARPs for 2 s, dnsmasq pings
for ~3 s) are refused at start by the probe, and one started mid-run is seen by the
passive watch when it answers a phone, with its address and MAC; our own server never is.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from framework.dhcp.packet import BROADCAST_IP, BROADCAST_MAC, build_frame
from framework.dhcp.probe import RogueDhcpServerError, refuse_rogue_servers
from framework.dhcp.server import DhcpServer
from framework.dhcp.settings import ServerSettings
from framework.dhcp.watch import ForeignDhcpWatch
from framework.netns import TestNetwork
from tests.dhcp.conftest import ALLOWED, LAB_IP, PHONE_MACS, POOL
from tests.dhcp.foreign_servers import Dnsmasq, ForeignServer, Udhcpd, have
from tests.dhcp.wire_clients import Udhcpc

ROOT = Path(__file__).resolve().parents[2]
NETNS_PREFIX = "hilt-rogue"
FOREIGN_IP = "192.0.2.99"
FOREIGN_POOL = ("192.0.2.150", "192.0.2.160")
ROGUE = 2  # the client namespace the foreign server runs in (its MAC: PHONE_MACS[2])
SERVERS = [
    pytest.param(Udhcpd, id="busybox-udhcpd",
                 marks=pytest.mark.skipif(not have("busybox"), reason="no busybox")),
    pytest.param(Dnsmasq, id="dnsmasq",
                 marks=pytest.mark.skipif(not have("dnsmasq"), reason="no dnsmasq (make setup)")),
]


@pytest.mark.netns
@pytest.mark.parametrize("server", SERVERS)
def test_a_server_that_checks_the_address_first_is_refused_at_start(
        net: TestNetwork, tmp_path: Path, server: type[ForeignServer]) -> None:
    with server(net.client(ROGUE), FOREIGN_IP, FOREIGN_POOL, tmp_path / "srv") as srv:
        started = time.monotonic()
        with pytest.raises(RogueDhcpServerError) as refused:
            refuse_rogue_servers("br0", netns=net.lab.name)
        took = time.monotonic() - started
    message = str(refused.value)
    assert f"OFFER from {FOREIGN_IP} ({PHONE_MACS[ROGUE]}, {FOREIGN_IP})" in message, \
        (message, srv.console)
    assert "\n" not in message
    assert took < 8.0, f"the start-up probe took {took:.1f} s"


@pytest.mark.netns
@pytest.mark.parametrize("server", SERVERS)
def test_the_watch_sees_a_server_started_mid_run_answer_a_phone(
        net: TestNetwork, tmp_path: Path, udhcpc: Callable[..., Udhcpc],
        server: type[ForeignServer]) -> None:
    phone = PHONE_MACS[0]
    ours = DhcpServer(ServerSettings.build("br0", LAB_IP, pool=POOL, allowlist=list(ALLOWED),
                                           netns=net.lab.name))
    ours.start()
    try:
        with ForeignDhcpWatch("br0", own_ips=[LAB_IP], netns=net.lab.name) as watch:
            # Our server alone: the phone gets its lease and the watch stays silent.
            assert udhcpc(0).obtain(timeout=15) is not None
            assert any(r.message_type == "ACK" for r in ours.transcript(phone))
            assert watch.seen() == [], watch.describe(watch.seen())

            with server(net.client(ROGUE), FOREIGN_IP, FOREIGN_POOL, tmp_path / "srv") as srv:
                trigger = time.time()
                udhcpc(0).obtain(timeout=15)  # both answer; the foreign one 2-3 s late
                found = watch.wait(trigger, mac=phone, timeout=10)
                console = list(srv.console)
    finally:
        ours.stop()
    assert found, f"the watch saw no foreign answer to {phone}; {server.name} said {console}"
    first = found[0]
    assert (first.server_ip, first.server_mac) == (FOREIGN_IP, PHONE_MACS[ROGUE])
    assert first.message_type in ("OFFER", "ACK") and first.chaddr == phone
    assert first.yiaddr.startswith("192.0.2.15") or first.yiaddr == "192.0.2.160"
    reason = watch.describe(found)
    assert reason.startswith(f"foreign DHCP server {FOREIGN_IP} ({PHONE_MACS[ROGUE]}) sent "
                             f"{first.message_type} of {first.yiaddr} to {phone} at "), reason
    assert all(m.server_ip != LAB_IP for m in watch.seen()), "our own server was counted"
    assert watch.seen(trigger, mac=PHONE_MACS[1]) == [], "another phone was blamed"
    assert watch.seen(time.time() + 1) == []


def test_only_frames_from_other_macs_count() -> None:
    """Frames from our own MAC are ours; another MAC naming our address is an impostor."""
    own, also_own = "02:00:00:00:aa:01", "02:00:00:00:aa:02"

    def answer(src_mac: str, server_id: str, chaddr: str) -> bytes:
        return bytes(build_frame(src_mac=src_mac, dst_mac=BROADCAST_MAC, src_ip=server_id,
                                 dst_ip=BROADCAST_IP, sport=67, dport=68, op=2, xid=7,
                                 mac=chaddr, yiaddr="192.0.2.150",
                                 options={53: b"\x02", 54: bytes(map(int, server_id.split(".")))}))

    watch = ForeignDhcpWatch("br0", own_macs=[own, also_own], own_ips=[LAB_IP])
    watch.feed(answer(own, LAB_IP, PHONE_MACS[0]))
    watch.feed(answer(also_own, FOREIGN_IP, PHONE_MACS[0]))
    assert watch.seen() == []
    watch.feed(answer("02:00:00:00:bb:02", LAB_IP, PHONE_MACS[0]))
    watch.feed(answer("02:00:00:00:bb:03", FOREIGN_IP, "00:00:00:00:00:00"))
    impostor, _nobody = watch.seen()
    assert impostor.claims_our_address and "(claiming our address)" in impostor.describe()
    assert [m.server_mac for m in watch.seen(mac=PHONE_MACS[1])] == ["02:00:00:00:bb:03"]
    assert len(watch.seen(xids=[7])) == 2 and watch.seen(xids=[8]) == []
    assert watch.seen(until=impostor.time) == [] and watch.seen(until=time.time() + 1)


@pytest.mark.netns
@pytest.mark.skipif(not have("busybox"), reason="no busybox")
def test_hil_run_refuses_a_foreign_server_in_one_line(net: TestNetwork, tmp_path: Path) -> None:
    """`hil run` on a rig whose lab network has busybox udhcpd (defaults) on it: it refuses
    before any case, with one line naming the server, and no pytest internals."""
    rig = yaml.safe_load((ROOT / "rigs" / "sim.yaml").read_text())
    rig["lab"].update(netns=net.lab.name, interface="br0")
    rig_file = tmp_path / "rig.yaml"
    rig_file.write_text(yaml.safe_dump(rig))
    with Udhcpd(net.client(ROGUE), FOREIGN_IP, FOREIGN_POOL, tmp_path / "srv"):
        proc = subprocess.run(
            [sys.executable, "-m", "framework.cli", "run", "--rig", str(rig_file),
             "--no-manage-sim", "--phones", rig["phones"][0]["name"], "--reports",
             str(tmp_path / "reports")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, out
    assert lines[0].startswith(
        "hil run: rig not usable: refusing to start: another DHCP server answers on br0: "
        f"OFFER from {FOREIGN_IP} ({PHONE_MACS[ROGUE]}, {FOREIGN_IP}) offering 192.0.2.1"), out
    assert "_pytest" not in out and "Traceback" not in out and "passed" not in out, out
