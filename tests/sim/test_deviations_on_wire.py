"""Each catalogue deviation changes the requests on the wire as its name says.

One lab holds a faithful reference phone and one phone per deviation. For each deviation
both phones get the same options from Kea (tests/sim/deviation_cases.py), re-provision on
the console ``provision`` command, and independent servers (fbtftp, stdlib http.server,
dnslib) report what each phone asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from framework.sim.firmware import SETTING_URL_OPTION
from tests.sim.conftest import needs_netns
from tests.sim.deviation_cases import CASES, DeviationCase, expand
from tests.sim.harness import (
    ConsoleTap,
    Kea,
    PhoneEntry,
    Reservation,
    SimLabRun,
    Witnesses,
    power,
)

pytestmark = [pytest.mark.netns, needs_netns]

REFERENCE = PhoneEntry("ref", "440HD", "00:90:8F:00:01:00", "192.0.2.20")
DEVIANTS = {case.deviation: PhoneEntry(f"d{i:02d}", "440HD", f"00:90:8F:00:01:{i:02X}",
                                       f"192.0.2.{20 + i}", deviations=(case.deviation,))
            for i, case in enumerate(CASES, start=1)}
ALL = [REFERENCE, *DEVIANTS.values()]


@pytest.fixture(scope="module")
def lab(start_lab: Callable[..., SimLabRun]) -> SimLabRun:
    return start_lab(ALL, outlets_on_at_start=False)


@pytest.fixture(scope="module")
def kea(start_kea: Callable[..., Kea], lab: SimLabRun) -> Kea:
    return start_kea([Reservation(p.mac, p.address) for p in ALL])


@pytest.fixture(scope="module")
def servers(witnesses: Witnesses, lab: SimLabRun) -> Witnesses:
    return witnesses.dns().tftp().http()


@pytest.fixture(scope="module")
def consoles(lab: SimLabRun, kea: Kea, servers: Witnesses) -> Iterator[dict[str, ConsoleTap]]:
    """Every phone powered on through the PDU, booted, and logged in on its serial line."""
    taps = {p.name: ConsoleTap(7000 + lab.index(p.name), p.name) for p in ALL}
    try:
        for p in ALL:
            power(lab, p.name, True)
        for p in ALL:
            taps[p.name].wait_text("login: ", timeout=20)
            taps[p.name].login(lab.password)
        yield taps
    finally:
        for tap in taps.values():
            tap.close()


def provision(tap: ConsoleTap) -> int:
    mark = tap.mark()
    assert "Provisioning started" in tap.run("provision")
    return mark


def observed(servers: Witnesses, phone: PhoneEntry, since: int) -> tuple[list[str], set[str]]:
    """File requests in order (``proto:name``) and DNS names, as the servers saw them."""
    files = [f"{s.protocol}:{s.name}" for s in servers.requests(phone.address, since)]
    names = {s.name for s in servers.seen.since(since)
             if s.protocol == "dns" and s.client == phone.address}
    return files, names


def reported(servers: Witnesses, phone: PhoneEntry, since: int,
             want: tuple[list[str], set[str]]) -> None:
    """Wait (bounded) until the servers have reported as many file requests and DNS names
    from the phone as expected: their reports travel through their own pipes and may
    come after the console's 'Provisioning done'. Fewer is not an error here: the
    comparison that follows shows what is missing."""
    def enough(_: list[object]) -> bool:
        files, names = observed(servers, phone, since)
        return len(files) >= len(want[0]) and names >= want[1]
    try:
        servers.seen.wait_for(enough, 5, f"the servers' reports of {phone.name}'s requests",
                              since=since)
    except TimeoutError:
        pass


def expected(case_side: tuple[str, ...], phone: PhoneEntry) -> tuple[list[str], set[str]]:
    items = expand(case_side, phone.mac)
    return ([e for e in items if not e.startswith("dns:")],
            {e[4:] for e in items if e.startswith("dns:")})


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.deviation)
def test_deviation_changes_requests_on_the_wire(case: DeviationCase, lab: SimLabRun, kea: Kea,
                                                servers: Witnesses,
                                                consoles: dict[str, ConsoleTap]) -> None:
    deviant = DEVIANTS[case.deviation]
    pair = (REFERENCE, deviant)
    kea.configure([Reservation(p.mac, p.address, case.options if p in pair else {})
                   for p in ALL])
    for phone in pair:
        for key, value in case.settings.items():
            consoles[phone.name].run(f"setcfg {key} {value}")
    try:
        mark = servers.seen.mark()
        started = {p.name: provision(consoles[p.name]) for p in pair}
        for phone in pair:
            consoles[phone.name].wait_text("Provisioning done", timeout=15,
                                           since=started[phone.name])
        reported(servers, REFERENCE, mark, expected(case.faithful, REFERENCE))
        reported(servers, deviant, mark, expected(case.deviant, deviant))
        faithful = observed(servers, REFERENCE, mark)
        deviating = observed(servers, deviant, mark)
    finally:
        for phone in pair:
            if SETTING_URL_OPTION in case.settings:
                consoles[phone.name].run(f"setcfg {SETTING_URL_OPTION} 160")
    assert faithful == expected(case.faithful, REFERENCE), "faithful firmware"
    assert deviating == expected(case.deviant, deviant), f"firmware with {case.deviation}"
    assert faithful != deviating
