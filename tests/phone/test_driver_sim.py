"""Phone400HD against the simulated rig: the sim's APC PDU over SNMP, its terminal server
(raw TCP and RFC 2217), its SSH servers, and our DHCP server seeing the DISCOVERs.

Nothing here is short-circuited: the power cycle is an SNMP SET to the sim's PDU agent, the
boot evidence is a DHCP DISCOVER on the lab bridge and the login prompt over TCP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from framework.dhcp.server import DhcpServer
from framework.dhcp.settings import ServerSettings
from framework.netns import Netns, have_privileges
from framework.phone import Phone400HD, PhoneBroken
from framework.rig import Rig, load_rig
from tests.rig.sim_bench import running_sim

pytestmark = pytest.mark.netns

PREFIX = "hilt-rp2"


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Rig, DhcpServer]]:
    ok, why = have_privileges()
    if not ok:
        pytest.skip(why)
    workdir = tmp_path_factory.mktemp("sim")
    with pytest.MonkeyPatch.context() as mp, running_sim(workdir, PREFIX, phones=2) as path:
        mp.setenv("HIL_SECRETS_FILE", str(workdir / "secrets.env"))
        rig = load_rig(path)
        lab = rig.lab
        settings = ServerSettings.build(lab.interface, str(lab.address.ip),
                                        fixed={p.mac_colon: str(p.address) for p in rig.phones},
                                        allowlist=[p.mac_colon for p in rig.phones], netns=lab.netns)
        with DhcpServer(settings) as dhcp:
            yield rig, dhcp


@pytest.fixture
def in_lab(sim: tuple[Rig, DhcpServer]) -> Iterator[None]:
    with Netns(f"{PREFIX}-lab").entered():
        yield


def driver(sim: tuple[Rig, DhcpServer], name: str, log_dir: Path, **kw: object) -> Phone400HD:
    rig, dhcp = sim
    return Phone400HD.from_rig(rig, rig.phone(name), log_dir, dhcp=dhcp, boot_timeout_s=20,
                               off_time_s=0.2, **kw)  # type: ignore[arg-type]


@pytest.mark.usefixtures("in_lab")
def test_power_cycle_reboots_check_sync_and_defaults_on_the_sim(
        sim: tuple[Rig, DhcpServer], tmp_path: Path) -> None:
    _, dhcp = sim
    phone = driver(sim, "ph1", tmp_path)
    try:
        boot = phone.power_cycle_and_wait_boot()
        assert boot.discover_at is not None and boot.started < boot.discover_at < boot.ready_at
        discover = dhcp.wait_for("00:90:8f:00:00:01", "DISCOVER", since=boot.started, timeout=1)
        assert discover.time == boot.discover_at  # the very DISCOVER the server recorded
        release = phone.verify_identity()
        assert (release.model, release.mac, release.version) == ("440HD", "00908F000001",
                                                                  "2.2.8.61")
        assert phone.reboot().discover_at is not None
        trigger = phone.check_sync()  # the sim's SIP agent, then its DHCP client
        assert trigger.status == "SIP/2.0 200 OK" and trigger.discover_at is not None
        assert trigger.sent_at <= trigger.answered_at <= trigger.discover_at
        assert phone.web_reboot().how == "web reboot"
        boot = phone.web_reset_to_defaults()
        assert boot.how == "web factory defaults" and boot.discover_at is not None
        assert phone.verify_identity().model == "440HD"
    finally:
        phone.close()
    log = (tmp_path / "ph1.console.log").read_text()
    assert log.count("serial < Restarting system.") == 3  # shell, web reboot, web defaults
    assert "serial < 440HD login: " in log
    assert "HIL_SIM_PHONE_PASSWORD" not in log


@pytest.mark.usefixtures("in_lab")
def test_rfc2217_console_and_ssh_on_the_sim(sim: tuple[Rig, DhcpServer],
                                           tmp_path: Path) -> None:
    serial = driver(sim, "ph2", tmp_path)  # rfc2217://...?ign_set_control in rigs/sim.yaml
    try:
        assert serial.verify_identity().model == "405HD"
    finally:
        serial.close()
    ssh = driver(sim, "ph2", tmp_path, console_kind="ssh")
    try:
        assert ssh.release().mac == "00908F000002"
        assert ssh.run("echo over ssh") == "over ssh"
    finally:
        ssh.close()
    channels = {line.split()[1] for line in (tmp_path / "ph2.console.log").read_text()
                .splitlines()}
    assert channels >= {"serial", "ssh"}


@pytest.mark.usefixtures("in_lab")
def test_wrong_mac_in_the_rig_means_no_boot_evidence(sim: tuple[Rig, DhcpServer],
                                                     tmp_path: Path) -> None:
    rig, dhcp = sim
    wrong = rig.phone("ph2").model_copy(update={"mac": "00908F0000EE"})
    phone = Phone400HD.from_rig(rig, wrong, tmp_path, dhcp=dhcp, boot_timeout_s=1.5,
                                off_time_s=0.1)
    try:
        with pytest.raises(PhoneBroken, match=r"power-cycle: no DHCP DISCOVER from "
                                              r"00:90:8f:00:00:ee within 1.5 s"):
            phone.power_cycle_and_wait_boot()
    finally:
        phone.close()
