"""A virtual phone driven only through what a real 400HD has (REAL-PHONE.md "Control paths"),
from the lab network with clients we did not write: SIPp sends NOTIFY check-sync (the phone
re-runs DHCP and provisioning, seen by tcpdump and the provisioning server), curl drives
the web interface (login, reboot, factory defaults), busybox telnet logs in once a served
configuration file turned telnet on."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from framework.netns import Netns
from tests.sim.conftest import needs_netns
from tests.sim.harness import (
    LAB_IP,
    LAB_NS,
    PYTHON,
    ROOT,
    BusyboxTelnet,
    ConsoleTap,
    DhcpWatch,
    Kea,
    PhoneEntry,
    Reservation,
    SimLabRun,
    Witnesses,
    lab_run,
    wait_port,
)

pytestmark = [pytest.mark.netns, needs_netns]
SCENARIOS = Path(__file__).parent / "sipp"
PHONES = [PhoneEntry("ph1", "440HD", "00:90:8F:00:00:01", "192.0.2.11"),
          PhoneEntry("ph2", "420HD", "00:90:8F:00:00:02", "192.0.2.12")]
SIP_PHONE, WEB_PHONE = PHONES


@pytest.fixture(scope="module")
def lab(start_lab: Callable[..., SimLabRun]) -> SimLabRun:
    return start_lab(PHONES)


@pytest.fixture(scope="module")
def servers(witnesses: Witnesses, lab: SimLabRun) -> Witnesses:
    return witnesses.http()


@pytest.fixture(scope="module")
def kea(start_kea: Callable[..., Kea], lab: SimLabRun, servers: Witnesses) -> Kea:
    """Fixed addresses; configuration files from http://192.0.2.1/ctl/ (Option 160)."""
    kea = start_kea([Reservation(p.mac, p.address, {160: b"http://192.0.2.1/ctl/"})
                     for p in PHONES])
    for p in PHONES:
        kea.log.wait_for(lambda lines, p=p: any("DHCP4_LEASE_ALLOC" in x and p.address in x
                                                for x in lines), 15, f"the lease of {p.name}")
    return kea


@pytest.fixture(scope="module")
def dhcp_watch(lab: SimLabRun) -> Iterator[DhcpWatch]:
    watch = DhcpWatch()
    yield watch
    watch.stop()


def logged_in(lab: SimLabRun, phone: PhoneEntry) -> Iterator[ConsoleTap]:
    """The phone's serial console, logged in (so the phone is up)."""
    tap = ConsoleTap(7000 + lab.index(phone.name), phone.name)
    try:
        tap.login(lab.password, timeout=20)
        yield tap
    finally:
        tap.close()


@pytest.fixture
def sip_console(lab: SimLabRun, kea: Kea) -> Iterator[ConsoleTap]:
    yield from logged_in(lab, SIP_PHONE)


@pytest.fixture
def web_console(lab: SimLabRun, kea: Kea) -> Iterator[ConsoleTap]:
    yield from logged_in(lab, WEB_PHONE)


def sipp(phone: PhoneEntry, scenario: str, transaction: str,
         port: int = 15060) -> subprocess.CompletedProcess[str]:
    """SIPp from the lab host, one request with a fixed transaction (same values: the same
    request, i.e. a retransmission)."""
    return lab_run(["sipp", "-sf", str(SCENARIOS / scenario), "-key", "transaction",
                    transaction, "-cid_str", f"{transaction}@%s",
                    "-s", phone.mac.replace(":", ""), "-m", "1", "-i", LAB_IP, "-p", str(port),
                    "-nostdin", "-timeout", "10s", "-timeout_error", f"{phone.address}:5060"],
                   timeout=30)


def cycle_done(tap: ConsoleTap, transaction: str, since: int, timeout: float = 15) -> str:
    """Console text once the cycle started by this NOTIFY says ``Provisioning done``."""
    marker = f"(Call-ID {transaction}@{LAB_IP}): checking provisioning"

    def done(chunks: list[str]) -> str | None:
        text = "".join(chunks)
        return text if marker in text and "Provisioning done" in text.split(marker, 1)[1] \
            else None
    return tap.output.wait_for(done, timeout, f"the cycle of NOTIFY {transaction}",
                               since=since) or ""


def serve(www: Path, phone: PhoneEntry, text: str | None) -> None:
    """The phone's configuration file (None: none is served, the server answers 404)."""
    path = www / "ctl" / f"{phone.mac.replace(':', '')}.cfg"
    path.parent.mkdir(parents=True, exist_ok=True)
    if text is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(text)


# -- SIP NOTIFY check-sync ---------------------------------------------------------------------

def test_check_sync_from_sipp_reruns_dhcp_and_provisioning_without_a_reboot(
        lab: SimLabRun, servers: Witnesses, www: Path, dhcp_watch: DhcpWatch,
        sip_console: ConsoleTap) -> None:
    serve(www, SIP_PHONE, "system/type=440HD\ntest/colour=green\n")
    marks = dhcp_watch.lines.mark(), servers.seen.mark(), sip_console.mark()
    done = sipp(SIP_PHONE, "check_sync.xml", "cs1")
    assert done.returncode == 0, done.stdout[-1500:]
    dhcp_watch.wait_discover(SIP_PHONE.mac, since=marks[0])
    text = cycle_done(sip_console, "cs1", marks[2])
    assert "U-Boot" not in text   # no reboot: the same boot re-ran DHCP and provisioning
    assert ("http", "/ctl/00908F000001.cfg") in servers.names(SIP_PHONE.address, marks[1])
    assert lab.status()["phones"]["ph1"]["settings"]["test/colour"] == "green"


def test_retransmitted_notify_is_answered_again_but_starts_one_cycle(
        servers: Witnesses, www: Path, sip_console: ConsoleTap) -> None:
    serve(www, SIP_PHONE, "system/type=440HD\ntest/colour=green\n")
    marks = servers.seen.mark(), sip_console.mark()
    for _ in range(2):   # the same request twice: same port, branch, From tag, Call-ID, CSeq
        again = sipp(SIP_PHONE, "check_sync.xml", "rt1", port=15062)
        assert again.returncode == 0, again.stdout[-1500:]   # 200 OK both times
    other = sipp(SIP_PHONE, "check_sync.xml", "rt2", port=15062)
    assert other.returncode == 0, other.stdout[-1500:]
    # Cycles run in the order asked: once rt2's is done, a cycle for the retransmission
    # would have come before it.
    text = cycle_done(sip_console, "rt2", marks[1])
    assert text.count(f"(Call-ID rt1@{LAB_IP}): checking provisioning") == 1
    assert text.count("checking provisioning") == 2 and text.count("Provisioning done") == 2
    assert servers.names(SIP_PHONE.address, marks[0]).count(
        ("http", "/ctl/00908F000001.cfg")) == 2


def test_notify_for_another_event_gets_489_and_starts_nothing(sip_console: ConsoleTap) -> None:
    mark = sip_console.mark()
    refused = sipp(SIP_PHONE, "other_event.xml", "ev1")
    assert refused.returncode == 0, refused.stdout[-1500:]   # the scenario expects 489
    assert sipp(SIP_PHONE, "check_sync.xml", "ev2").returncode == 0
    text = cycle_done(sip_console, "ev2", mark)
    assert text.count("checking provisioning") == 1


@pytest.mark.parametrize("value", ["999", "0", "x"])
def test_a_served_nonsense_url_option_is_ignored(lab: SimLabRun, www: Path,
                                                  sip_console: ConsoleTap, value: str) -> None:
    """provisioning/url_option_value out of 1..254: the phone keeps reading 160, no crash."""
    serve(www, SIP_PHONE, f"system/type=440HD\nprovisioning/url_option_value={value}\n")
    mark = sip_console.mark()
    assert sipp(SIP_PHONE, "check_sync.xml", f"uo-{value}-1").returncode == 0
    cycle_done(sip_console, f"uo-{value}-1", mark)
    assert lab.status()["phones"]["ph1"]["settings"]["provisioning/url_option_value"] == value
    mark = sip_console.mark()
    assert sipp(SIP_PHONE, "check_sync.xml", f"uo-{value}-2").returncode == 0
    assert "Provisioning: option 160" in cycle_done(sip_console, f"uo-{value}-2", mark)
    serve(www, SIP_PHONE, "system/type=440HD\nprovisioning/url_option_value=160\n")


# -- the web interface ------------------------------------------------------------------------

def curl(*args: str) -> str:
    """curl from the lab host: status line, headers and body (``-i``)."""
    proc = lab_run(["curl", "-s", "-S", "-i", "-m", "10", *args], timeout=20)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def login(lab: SimLabRun, phone: PhoneEntry, jar: Path, password: str | None = None) -> str:
    psw = base64.b64encode((lab.password if password is None else password).encode()).decode()
    return curl("-c", str(jar), "--data-urlencode", "user=admin", "--data-urlencode",
                f"psw={psw}", f"http://{phone.address}/login.cgi")


def test_web_refuses_a_wrong_password_and_requests_without_a_session_then_reboots(
        lab: SimLabRun, dhcp_watch: DhcpWatch, web_console: ConsoleTap, tmp_path: Path) -> None:
    base = f"http://{WEB_PHONE.address}"
    assert curl(f"{base}/").startswith("HTTP/1.1 200 ")
    assert curl(f"{base}/cgi-bin/nothing").startswith("HTTP/1.1 404 ")
    mark, dhcp_mark = web_console.mark(), dhcp_watch.lines.mark()
    refused = login(lab, WEB_PHONE, tmp_path / "bad.jar", password="not-the-password")
    assert refused.startswith("HTTP/1.1 200 ") and "Login failed" in refused
    assert "set-cookie" not in refused.lower()
    for page in ("reboot.htm", "reset.htm"):   # no session: sent to the login page
        answer = curl("-X", "POST", "-d", "CONFIG=2", f"{base}/mainform.cgi/{page}")
        assert answer.startswith("HTTP/1.1 302 ") and "Location: /login.htm" in answer
    forged = curl("-b", "SESSIONID=0123456789abcdef", "-X", "POST",
                  f"{base}/mainform.cgi/reboot.htm")
    assert forged.startswith("HTTP/1.1 302 ")
    jar = tmp_path / "good.jar"
    accepted = login(lab, WEB_PHONE, jar)
    assert accepted.startswith("HTTP/1.1 200 ") and "Set-Cookie: SESSIONID=" in accepted
    rebooted = curl("-b", str(jar), "-X", "POST", f"{base}/mainform.cgi/reboot.htm")
    assert rebooted.startswith("HTTP/1.1 200 ")
    text = web_console.wait_text("420HD login: ", timeout=20, since=mark)
    dhcp_watch.wait_discover(WEB_PHONE.mac, since=dhcp_mark)
    # Only the session's reboot restarted the phone.
    assert text.count("Restarting system.") == 1 and text.count("U-Boot") == 1
    assert text.index("Restarting system.") < text.index("U-Boot")
    stale = curl("-b", str(jar), "-X", "POST", f"{base}/mainform.cgi/reboot.htm")
    assert stale.startswith("HTTP/1.1 302 ")   # sessions end with the boot


# -- telnet, turned on by a configuration file; factory defaults turn it off ------------------

def console_dead(lab: SimLabRun, phone: PhoneEntry, state: str) -> None:
    proc = subprocess.run([PYTHON, "-m", "framework.sim", "fault", "console-dead", state,
                           "--phone", phone.name, "--rig", str(lab.rig)], capture_output=True,
                          text=True, cwd=ROOT, env=lab.env, timeout=30)
    assert proc.returncode == 0, proc.stderr


def telnet_refused(phone: PhoneEntry) -> bool:
    proc = Netns(LAB_NS).run(["busybox", "telnet", phone.address], timeout=10, input="")
    return proc.returncode != 0 and "can't connect" in proc.stderr




def test_telnet_runs_once_a_served_file_enables_it_and_factory_defaults_stop_it(
        lab: SimLabRun, www: Path, web_console: ConsoleTap, tmp_path: Path) -> None:
    assert telnet_refused(WEB_PHONE)   # factory default: management/telnet/enabled=0
    serve(www, WEB_PHONE, "system/type=420HD\ntest/colour=blue\nmanagement/telnet/enabled=1\n")
    mark = web_console.mark()
    assert sipp(WEB_PHONE, "check_sync.xml", "tn1").returncode == 0
    cycle_done(web_console, "tn1", mark)
    assert lab.status()["phones"]["ph2"]["settings"]["test/colour"] == "blue"

    telnet = BusyboxTelnet(Netns(LAB_NS).popen(
        BusyboxTelnet.argv(WEB_PHONE.address), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT))
    try:
        telnet.expect("420HD login: ")
        telnet.expect("Password: ", telnet.type("admin"))
        telnet.expect("[admin@420HD ~]$ ", telnet.type(lab.password))
        telnet.expect("SWVERSION=", telnet.type("cat /etc/release"))
        telnet.expect("uid=0(admin)", telnet.type("id"))
        telnet.type("exit")
        assert telnet.proc.wait(timeout=10) is not None   # the phone closed the connection
        assert lab.password not in "".join(telnet.output.since())
    finally:
        telnet.close()

    # A console-dead fault takes telnet down with serial and SSH; cleared, it is back.
    console_dead(lab, WEB_PHONE, "on")
    try:
        assert telnet_refused(WEB_PHONE)
    finally:
        console_dead(lab, WEB_PHONE, "off")
    wait_port(WEB_PHONE.address, 23, 10, "telnet to listen again after the fault")

    # Factory defaults through the web interface (the file is no longer served, so the
    # boot after the reset keeps the defaults): the colour is gone and telnet is off.
    serve(www, WEB_PHONE, None)
    jar = tmp_path / "jar"
    login(lab, WEB_PHONE, jar)
    base = f"http://{WEB_PHONE.address}/mainform.cgi/reset.htm"
    assert curl("-b", str(jar), "-d", "CONFIG=1", base).startswith("HTTP/1.1 400 ")
    mark = web_console.mark()
    assert curl("-b", str(jar), "-d", "CONFIG=2", base).startswith("HTTP/1.1 200 ")
    text = web_console.wait_text("420HD login: ", timeout=20, since=mark)
    assert text.index("Restoring factory defaults") < text.index("Restarting system.") \
        < text.index("U-Boot") < text.index("Provisioning done")
    settings = lab.status()["phones"]["ph2"]["settings"]
    assert "test/colour" not in settings
    assert settings.get("management/telnet/enabled", "0") == "0"
    assert telnet_refused(WEB_PHONE)
