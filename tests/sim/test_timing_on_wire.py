"""Deviations in *when* the phone provisions, seen on the wire: ``late-request`` (one more
request N s after the cycle) and ``reboot-after-config`` (a restart and a second DHCP and
provisioning cycle after a configuration was applied).

One lab holds a faithful control phone and one phone per deviation; Kea gives them all the
same Option 160, an independent HTTP server (stdlib http.server, tests/sim/witness_server.py)
serves the configuration and reports each request with its arrival time, tcpdump on the
lab bridge shows the DHCP packets, and the serial console shows what the phone printed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.sim.conftest import needs_netns
from tests.sim.harness import (
    LAB_IP,
    ConsoleTap,
    DhcpWatch,
    Kea,
    PhoneEntry,
    Reservation,
    Seen,
    SimLabRun,
    Witnesses,
    power,
)

pytestmark = [pytest.mark.netns, needs_netns]

LATE_S = 1.5        # the late phone's knob (not the 2.0 default: the knob is read)
TOLERANCE_S = 0.3
CONTROL = PhoneEntry("ctl", "440HD", "00:90:8F:00:03:01", "192.0.2.31")
LATE = PhoneEntry("late", "440HD", "00:90:8F:00:03:02", "192.0.2.32",
                  deviations=("late-request",), late_request_s=LATE_S)
REBOOT = PhoneEntry("boot", "440HD", "00:90:8F:00:03:03", "192.0.2.33",
                    deviations=("reboot-after-config",), boot_time_s=0.5)
ALL = [CONTROL, LATE, REBOOT]
OPTIONS = {160: f"http://{LAB_IP}/fw.img;cfg.cfg".encode()}
FW, CFG = "/fw.img", "/cfg.cfg"


@pytest.fixture(scope="module")
def lab(start_lab: Callable[..., SimLabRun]) -> SimLabRun:
    return start_lab(ALL, outlets_on_at_start=False)


@pytest.fixture(scope="module")
def kea(start_kea: Callable[..., Kea], lab: SimLabRun) -> Kea:
    return start_kea([Reservation(p.mac, p.address) for p in ALL])


@pytest.fixture(scope="module")
def servers(witnesses: Witnesses, www: Path, lab: SimLabRun) -> Witnesses:
    # A configuration every phone applies (no firmware image: its request gets a 404).
    (www / "cfg.cfg").write_text("system/type=440HD\nvoip/line/0/description=hilt\n")
    return witnesses.http()


@pytest.fixture(scope="module")
def dhcp_watch(lab: SimLabRun) -> Iterator[DhcpWatch]:
    watch = DhcpWatch()
    yield watch
    watch.stop()


@pytest.fixture(scope="module")
def consoles(lab: SimLabRun, kea: Kea, servers: Witnesses,
             dhcp_watch: DhcpWatch) -> Iterator[dict[str, ConsoleTap]]:
    """Every phone booted without provisioning options and logged in; then Option 160."""
    taps = {p.name: ConsoleTap(7000 + lab.index(p.name), p.name) for p in ALL}
    try:
        for p in ALL:
            power(lab, p.name, True)
        for p in ALL:
            taps[p.name].wait_text("login: ", timeout=20)
            taps[p.name].login(lab.password)
        kea.configure([Reservation(p.mac, p.address, OPTIONS) for p in ALL])
        yield taps
    finally:
        for tap in taps.values():
            tap.close()


def provision(tap: ConsoleTap) -> int:
    mark = tap.mark()
    assert "Provisioning started" in tap.run("provision")
    return mark


def requests(servers: Witnesses, phone: PhoneEntry, since: int) -> list[Seen]:
    return servers.requests(phone.address, since)


def wait_requests(servers: Witnesses, phone: PhoneEntry, since: int, count: int,
                  timeout: float = 15) -> None:
    def enough(items: list[object]) -> bool:
        return sum(1 for s in items if isinstance(s, Seen) and s.client == phone.address
                   and s.protocol == "http") >= count
    servers.seen.wait_for(enough, timeout, f"{count} HTTP requests from {phone.name}",
                          since=since)


def arrivals(seen: list[Seen]) -> list[float]:
    """The servers' arrival times (the HTTP witness stamps every request)."""
    times = [s.time for s in seen]
    assert all(t is not None for t in times), seen
    return [t for t in times if t is not None]


def printed_at(tap: ConsoleTap, text: str, since: int) -> float:
    """When the console output since ``since`` first contained ``text`` (arrival time)."""
    joined = ""
    for stamp, chunk in tap.output.stamped(since):
        joined += chunk
        if text in joined:
            return stamp
    raise AssertionError(f"{tap.output.name}: {text!r} not printed")


def test_late_request_comes_n_seconds_after_the_cycle_then_provisioning_done(
        consoles: dict[str, ConsoleTap], servers: Witnesses) -> None:
    mark = servers.seen.mark()
    started = {p.name: provision(consoles[p.name]) for p in (CONTROL, LATE)}
    for p in (CONTROL, LATE):
        consoles[p.name].wait_text("Provisioning done", timeout=15, since=started[p.name])
    late = requests(servers, LATE, mark)
    assert [s.name for s in late] == [FW, CFG, CFG]
    assert [s.name for s in requests(servers, CONTROL, mark)] == [FW, CFG]
    times = arrivals(late)
    gap = times[2] - times[1]
    assert abs(gap - LATE_S) <= TOLERANCE_S, f"late request {gap:.2f} s after the cycle"
    # The end-of-cycle marker stays honest: it follows the late request.
    done = printed_at(consoles[LATE.name], "Provisioning done", started[LATE.name])
    assert done >= times[2]
    assert consoles[LATE.name].output.since(started[LATE.name]).count("Provisioning done") <= 1


def test_provision_during_the_wait_runs_after_the_late_request(
        consoles: dict[str, ConsoleTap], servers: Witnesses) -> None:
    tap = consoles[LATE.name]
    mark = servers.seen.mark()
    first = provision(tap)
    wait_requests(servers, LATE, mark, 2)  # the cycle's configuration: the wait begins
    provision(tap)
    tap.output.wait_for(lambda c: "".join(c).count("Provisioning done") >= 2 and c, 20,
                        "two 'Provisioning done'", since=first)
    seen = requests(servers, LATE, mark)
    assert [s.name for s in seen] == [FW, CFG, CFG] * 2
    times = arrivals(seen)
    assert abs(times[2] - times[1] - LATE_S) <= TOLERANCE_S
    assert times[3] > times[2]


@pytest.mark.parametrize("how", ["reboot", "power"])
def test_reboot_or_power_loss_cancels_the_late_request(
        how: str, lab: SimLabRun, consoles: dict[str, ConsoleTap], servers: Witnesses) -> None:
    tap = consoles[LATE.name]
    mark = servers.seen.mark()
    provision(tap)
    wait_requests(servers, LATE, mark, 2)
    restart = tap.mark()
    if how == "reboot":
        tap.send("reboot\r")
    else:
        power(lab, LATE.name, False)
        power(lab, LATE.name, True)
    tap.wait_text("login: ", timeout=20, since=restart)  # the new boot's cycle is over
    seen = requests(servers, LATE, mark)
    # A late request the old cycle did not cancel would come LATE_S after its
    # configuration, before the new cycle's late one.
    assert [s.name for s in seen] == [FW, CFG, FW, CFG, CFG], [s.name for s in seen]
    times = arrivals(seen)
    assert abs(times[4] - times[3] - LATE_S) <= TOLERANCE_S
    tap.login(lab.password)


def test_reboot_after_config_restarts_once_and_provisions_again(
        lab: SimLabRun, consoles: dict[str, ConsoleTap], servers: Witnesses,
        dhcp_watch: DhcpWatch) -> None:
    tap = consoles[REBOOT.name]
    mark, dhcp_mark = servers.seen.mark(), dhcp_watch.lines.mark()
    started = {p.name: provision(consoles[p.name]) for p in (CONTROL, REBOOT)}
    consoles[CONTROL.name].wait_text("Provisioning done", timeout=15,
                                     since=started[CONTROL.name])
    tap.wait_text("login: ", timeout=20, since=started[REBOOT.name])
    text = "".join(tap.output.since(started[REBOOT.name]))
    assert text.count("Restarting system.") == 1 and text.count("Provisioning done") == 1
    assert text.index("Restarting system.") < text.index("U-Boot") < \
        text.index("Provisioning done")
    seen = requests(servers, REBOOT, mark)
    assert [s.name for s in seen] == [FW, CFG, FW, CFG]
    assert [s.name for s in requests(servers, CONTROL, mark)] == [FW, CFG]
    control = "".join(consoles[CONTROL.name].output.since(started[CONTROL.name]))
    assert "Restarting system." not in control

    # On the wire: after the banner, a broadcast DHCP exchange before the second cycle.
    banner = printed_at(tap, "Restarting system.", started[REBOOT.name])
    mac = REBOOT.mac.lower()
    dhcp = [t for t, line in dhcp_watch.lines.stamped(dhcp_mark)
            if "IP 0.0.0.0.68 > 255.255.255.255.67" in line and f"Request from {mac}" in line]
    times = arrivals(seen)
    assert any(banner < t < times[2] for t in dhcp), (banner, dhcp, times[2])
    assert times[1] < banner

    # Once per trigger: the next `provision` restarts again (once).
    tap.login(lab.password)
    again = provision(tap)
    tap.wait_text("login: ", timeout=20, since=again)
    assert "".join(tap.output.since(again)).count("Restarting system.") == 1
    tap.login(lab.password)
