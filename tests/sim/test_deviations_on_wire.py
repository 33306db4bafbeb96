"""Each catalogue deviation changes the requests on the wire as its name says.

One lab holds a faithful reference phone and one phone per deviation (a case that needs a
phone setting gets a reference phone of its own, both with that setting as factory
default). For each deviation both phones get the same options from Kea
(tests/sim/deviation_cases.py), are power-cycled through the PDU (a boot cycle, as on a
real phone), and independent servers (fbtftp, stdlib http.server, dnslib) report what each
phone asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

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
                                       f"192.0.2.{20 + i}", deviations=(case.deviation,),
                                       settings=dict(case.settings))
            for i, case in enumerate(CASES, start=1)}
#: a faithful phone with the case's settings, for the cases that need settings
REFERENCES = {case.deviation: PhoneEntry(f"r{i:02d}", "440HD", f"00:90:8F:00:02:{i:02X}",
                                         f"192.0.2.{60 + i}", settings=dict(case.settings))
              for i, case in enumerate(CASES, start=1) if case.settings}
ALL = [REFERENCE, *DEVIANTS.values(), *REFERENCES.values()]


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
    """Every phone powered on through the PDU and booted (its first cycle over)."""
    taps = {p.name: ConsoleTap(7000 + lab.index(p.name), p.name) for p in ALL}
    try:
        for p in ALL:
            power(lab, p.name, True)
        for p in ALL:
            taps[p.name].wait_text("login: ", timeout=20)
        yield taps
    finally:
        for tap in taps.values():
            tap.close()


def power_cycle(lab: SimLabRun, tap: ConsoleTap, phone: PhoneEntry) -> int:
    """Power off and on through the PDU: the boot's DHCP and provisioning cycle follows."""
    mark = tap.mark()
    power(lab, phone.name, False)
    power(lab, phone.name, True)
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
    reference = REFERENCES.get(case.deviation, REFERENCE)
    pair = (reference, deviant)
    kea.configure([Reservation(p.mac, p.address, case.options if p in pair else {})
                   for p in ALL])
    mark = servers.seen.mark()
    started = {p.name: power_cycle(lab, consoles[p.name], p) for p in pair}
    for phone in pair:
        consoles[phone.name].wait_text("Provisioning done", timeout=15,
                                       since=started[phone.name])
    reported(servers, reference, mark, expected(case.faithful, reference))
    reported(servers, deviant, mark, expected(case.deviant, deviant))
    faithful = observed(servers, reference, mark)
    deviating = observed(servers, deviant, mark)
    assert faithful == expected(case.faithful, reference), "faithful firmware"
    assert deviating == expected(case.deviant, deviant), f"firmware with {case.deviation}"
    assert faithful != deviating
