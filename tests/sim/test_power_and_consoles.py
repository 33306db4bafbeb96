"""The simulated PDU (driven by net-snmp) and the consoles (pyserial socket:// and rfc2217://,
paramiko), seen from the lab network as the framework sees a real bench."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator

import paramiko
import pytest
import serial

from framework.netns import Netns
from tests.sim.conftest import needs_netns
from tests.sim.harness import (
    LAB_NS,
    OUTLET_CTL,
    OUTLET_NAME,
    PYTHON,
    ROOT,
    ConsoleTap,
    DhcpWatch,
    Kea,
    Reservation,
    SimLabRun,
    lab_run,
    phones,
    power,
    snmpget,
    snmpset,
)

pytestmark = [pytest.mark.netns, needs_netns,
              # pyserial 3.5's own rfc2217 client thread set-up, not ours
              pytest.mark.filterwarnings("ignore:set(Daemon|Name):DeprecationWarning")]
PHONES = phones(3, ("440HD", "420HD", "445HD"))
DEAD = 3  # ph3's outlet is configured dead


@pytest.fixture(scope="module")
def lab(start_lab: Callable[..., SimLabRun]) -> SimLabRun:
    return start_lab(PHONES, pdu={"dead_outlets": [DEAD], "reboot_delay_s": 0.3})


@pytest.fixture(scope="module")
def kea(start_kea: Callable[..., Kea], lab: SimLabRun) -> Kea:
    """Kea with a fixed address per phone; returns once every phone has its lease."""
    kea = start_kea([Reservation(p.mac, p.address) for p in PHONES])
    for p in PHONES:
        kea.log.wait_for(lambda lines, p=p: any("DHCP4_LEASE_ALLOC" in x and p.address in x
                                                for x in lines),
                         15, f"the lease of {p.name}")
    return kea


@pytest.fixture(scope="module")
def dhcp_watch(lab: SimLabRun) -> Iterator[DhcpWatch]:
    watch = DhcpWatch()
    yield watch
    watch.stop()


def booted(lab: SimLabRun, name: str, action: Callable[[], object], timeout: float = 15) -> str:
    """Run ``action`` with the serial console attached; return the console text up to login."""
    tap = ConsoleTap(7000 + lab.index(name), name)
    try:
        action()
        return tap.wait_text("login: ", timeout)
    finally:
        tap.close()


def ssh(address: str, password: str) -> paramiko.SSHClient:
    with Netns(LAB_NS).entered():
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(address, username="admin", password=password, look_for_keys=False,
                       allow_agent=False, timeout=10)
    return client


def exec_(client: paramiko.SSHClient, command: str) -> tuple[str, int]:
    _, out, _ = client.exec_command(command, timeout=10)
    return out.read().decode(), out.channel.recv_exit_status()


def reachable(address: str) -> bool:
    """One ping from the lab (the phone's kernel answers while it is up)."""
    try:
        return lab_run(["busybox", "ping", "-c", "1", "-W", "1", "-w", "1", address],
                       timeout=4).returncode == 0
    except subprocess.TimeoutExpired:  # no ARP answer: busybox may block in sendto
        return False


# -- the PDU -----------------------------------------------------------------------------------

def test_outlet_off_drops_the_link_and_on_boots_with_a_discover(
        lab: SimLabRun, kea: Kea, dhcp_watch: DhcpWatch) -> None:
    ph1 = PHONES[0]
    assert snmpget(lab.community, f"{OUTLET_CTL}.1").stdout.strip() == "1"
    power(lab, ph1.name, False)
    assert snmpget(lab.community, f"{OUTLET_CTL}.1").stdout.strip() == "2"
    assert "NO-CARRIER" in lab_run(["ip", "link", "show", "vph1"]).stdout  # link down at once
    assert not reachable(ph1.address)
    mark = dhcp_watch.lines.mark()
    text = booted(lab, ph1.name, lambda: power(lab, ph1.name, True))
    dhcp_watch.wait_discover(ph1.mac, since=mark)
    assert "U-Boot" in text and "440HD login: " in text
    assert reachable(ph1.address)


def test_outlet_reboot_is_off_then_on(lab: SimLabRun, kea: Kea, dhcp_watch: DhcpWatch) -> None:
    ph2 = PHONES[1]
    mark = dhcp_watch.lines.mark()
    began = time.monotonic()
    text = booted(lab, ph2.name, lambda: snmpset(lab.community, 2, 3))
    dhcp_watch.wait_discover(ph2.mac, since=mark)
    assert time.monotonic() - began >= 0.3  # the configured reboot delay
    assert "420HD login: " in text
    assert snmpget(lab.community, f"{OUTLET_CTL}.2").stdout.strip() == "1"


def test_rapid_power_toggling_leaves_one_clean_boot(lab: SimLabRun, kea: Kea,
                                                   dhcp_watch: DhcpWatch) -> None:
    ph2 = PHONES[1]
    for _ in range(4):
        power(lab, ph2.name, False)
        power(lab, ph2.name, True)
    power(lab, ph2.name, False)
    assert not reachable(ph2.address)  # the last word was "off": no stale boot came up
    assert lab.status()["phones"]["ph2"]["address"] is None
    text = booted(lab, ph2.name, lambda: power(lab, ph2.name, True))
    assert text.count("U-Boot") == 1
    assert reachable(ph2.address)
    assert lab.status()["phones"]["ph2"]["phase"] == "up"


def test_outlet_names_bad_values_and_wrong_community(lab: SimLabRun) -> None:
    assert snmpget(lab.community, f"{OUTLET_NAME}.2").stdout.strip() == '"ph2"'
    bad = snmpset(lab.community, 1, 7)
    assert bad.returncode != 0 and "wrongValue" in bad.stderr
    wrong = snmpget(lab.community + "x", f"{OUTLET_CTL}.1", timeout=0.5)
    assert wrong.returncode != 0 and "Timeout" in wrong.stderr


def test_dead_outlet_accepts_sets_but_never_switches(lab: SimLabRun, kea: Kea) -> None:
    ph3 = PHONES[2]
    assert snmpset(lab.community, DEAD, 2).returncode == 0
    assert snmpget(lab.community, f"{OUTLET_CTL}.{DEAD}").stdout.strip() == "1"
    assert reachable(ph3.address)


def test_unreachable_pdu_fault_switched_at_run_time(lab: SimLabRun) -> None:
    def fault(state: str) -> None:
        proc = subprocess.run([PYTHON, "-m", "framework.sim", "fault", "pdu-unreachable",
                               state, "--rig", str(lab.rig)], capture_output=True, text=True,
                              cwd=ROOT, env=lab.env, timeout=30)
        assert proc.returncode == 0, proc.stderr
    fault("on")
    try:
        gone = snmpget(lab.community, f"{OUTLET_CTL}.1", timeout=0.5)
        assert gone.returncode != 0 and "Timeout" in gone.stderr
        assert lab.status()["pdus"]["pdu1"]["reachable"] is False
    finally:
        fault("off")
    assert snmpget(lab.community, f"{OUTLET_CTL}.1").stdout.strip() in ("1", "2")


# -- serial consoles ---------------------------------------------------------------------------

def open_serial(url: str) -> serial.SerialBase:
    with Netns(LAB_NS).entered():
        return serial.serial_for_url(url, timeout=5)


def login(port: serial.SerialBase, password: str, model: str) -> None:
    port.write(b"\r")
    seen = port.read_until(b": ", 4096) + port.read(port.in_waiting)
    if b"~]$ " in seen:
        return
    assert f"{model} login: ".encode() in seen, seen
    port.write(b"admin\r")
    assert port.read_until(b"Password: ").endswith(b"Password: ")
    port.write(password.encode() + b"\r")
    assert port.read_until(b"~]$ ").endswith(f"[admin@{model} ~]$ ".encode())


def command(port: serial.SerialBase, line: str) -> str:
    port.write(line.encode() + b"\r")
    text = port.read_until(b"~]$ ").decode()
    assert text.endswith("~]$ "), f"no prompt after {line!r}: {text!r}"
    body = text.split("\r\n", 1)[1]             # after the echoed command line
    return body[:body.rindex("[admin@")].removesuffix("\r\n")


@pytest.mark.parametrize("kind", ["socket", "rfc2217", "rfc2217-ign"])
def test_serial_console_login_and_commands(lab: SimLabRun, kea: Kea, kind: str) -> None:
    url = {"socket": "socket://192.0.2.251:7001",
           "rfc2217": "rfc2217://192.0.2.251:7101",
           "rfc2217-ign": "rfc2217://192.0.2.251:7101?ign_set_control"}[kind]
    port = open_serial(url)
    try:
        if kind != "socket":
            port.baudrate = 9600  # an RFC 2217 SET-BAUDRATE the server must accept
        login(port, lab.password, "440HD")
        assert command(port, "cat /etc/release") == \
            "HW_TYPE=440HD\r\nBUILD_PROFILE=release\r\nSWVERSION=2.2.8.61"
        assert command(port, f"echo {kind}") == kind
        assert command(port, "id") == "uid=0(admin) gid=0(root) groups=0(root)"
        assert command(port, "frobnicate") == "-sh: frobnicate: not found"
        port.write(b"exit\r")
        assert port.read_until(b"login: ").endswith(b"440HD login: ")
    finally:
        port.close()


def test_serial_wrong_password_is_refused(lab: SimLabRun) -> None:
    port = open_serial("socket://192.0.2.251:7002")
    try:
        port.write(b"\r")
        port.read_until(b"login: ")
        port.write(b"admin\r")
        port.read_until(b"Password: ")
        port.write(b"not-the-password\r")
        text = port.read_until(b"login: ").decode()
        assert "Login incorrect" in text and "~]$" not in text
    finally:
        port.close()


def test_serial_connection_survives_a_shell_reboot(lab: SimLabRun, kea: Kea) -> None:
    port = open_serial("rfc2217://192.0.2.251:7102?ign_set_control")
    try:
        login(port, lab.password, "420HD")
        port.write(b"reboot\r")
        text = port.read_until(b"420HD login: ", 65536).decode()
        assert text.index("Restarting system.") < text.index("U-Boot")
        login(port, lab.password, "420HD")
        assert command(port, "cat /etc/release").startswith("HW_TYPE=420HD\r\n")
    finally:
        port.close()


# -- SSH -----------------------------------------------------------------------------------------

def test_ssh_exec_several_commands_and_an_interactive_shell(lab: SimLabRun, kea: Kea) -> None:
    ph1 = PHONES[0]
    client = ssh(ph1.address, lab.password)
    try:
        assert exec_(client, "cat /etc/release") == (
            "HW_TYPE=440HD\nBUILD_PROFILE=release\nSWVERSION=2.2.8.61\n", 0)
        assert exec_(client, "cat /sys/class/net/eth0/address") == ("00:90:8f:00:00:01\n", 0)
        assert exec_(client, "uname -a") == (
            "Linux 440HD 2.6.32 #1 PREEMPT armv5tejl GNU/Linux\n", 0)
        assert exec_(client, "getcfg provisioning/url_option_value")[1] == 127  # no such tool
        shell = client.invoke_shell()
        shell.settimeout(10)
        received = b""
        while not received.endswith(b"[admin@440HD ~]$ "):
            received += shell.recv(1024)
        shell.send(b"cat /etc/release\r")
        while b"SWVERSION=2.2.8.61" not in received or not received.endswith(b"~]$ "):
            received += shell.recv(1024)
        shell.close()
    finally:
        client.close()
    with Netns(LAB_NS).entered():
        refused = paramiko.SSHClient()
        refused.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        with pytest.raises(paramiko.AuthenticationException):
            refused.connect(ph1.address, username="admin", password="wrong",
                            look_for_keys=False, allow_agent=False, timeout=10)
        refused.close()


def test_ssh_reboot_closes_the_session_and_comes_back(lab: SimLabRun, kea: Kea) -> None:
    ph1 = PHONES[0]
    client = ssh(ph1.address, lab.password)
    tap = ConsoleTap(7001, ph1.name)
    try:
        # The reboot takes the SSH server down with the session: the exit status may or
        # may not get out first (-1: paramiko saw the connection die without one), as on
        # a real phone whose dropbear is killed by the shutdown.
        output, status = exec_(client, "reboot")
        assert output == "Restarting system.\n" and status in (0, -1), (output, status)
        tap.wait_text("440HD login: ", timeout=15)
        with pytest.raises((paramiko.SSHException, EOFError, OSError)):
            exec_(client, "cat /etc/release")  # the old connection died with the reboot
    finally:
        client.close()
        tap.close()
    again = ssh(ph1.address, lab.password)
    try:
        assert exec_(again, "cat /etc/release")[1] == 0
    finally:
        again.close()
