"""Oracles: something that gives a phone a case and reports what it requested.

:class:`LaneOracle` is a phone of the rig (one lane of a :class:`LabSession`): every call
is a real provisioning cycle on the wire, so it is what exploration counts as cost.
:class:`PlannerOracle` is the simulated firmware's planner (``framework.sim.firmware``)
without a network: a fast stand-in used to test the grammar, the shrinker and the
inference, showing what exploration sees of a case on the wire (file requests by URL; DNS
look-ups of names; of a redirect attempt only its DNS query; no late request).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any, Protocol

from framework.explore.assess import Trial
from framework.runner.catalogue import LAB_DNS_NAME, Case
from framework.runner.verdict import Observed


class Oracle(Protocol):
    """One phone: ``run(case)`` gives it the case and returns what it did."""

    name: str
    model: str

    def run(self, case: Case) -> Trial: ...


class PlannerOracle:
    """The sim firmware's planner as a phone, with the given deviations."""

    def __init__(self, deviations: Iterable[str] = (), *, name: str = "planner",
                 model: str = "440HD", mac: str = "00908F000001", firmware: str = "2.2.8.61",
                 lab_ip: str = "192.0.2.1") -> None:
        from framework.sim.firmware import Faithful400HD

        self.firmware_impl = Faithful400HD(deviations=deviations)
        self.name, self.model, self.mac, self.firmware = name, model, mac, firmware
        self.lab_ip = lab_ip
        self.calls = 0

    def run(self, case: Case) -> Trial:
        self.calls += 1
        plan = self.firmware_impl.plan(
            case.render(self.lab_ip, LAB_DNS_NAME), model=self.model, mac=self.mac,
            settings={"provisioning/url_option_value": str(case.url_option)})
        files: list[Observed] = []
        dns: list[Observed] = []
        asked: set[str] = set()
        t = 0.0
        for r in plan.requests:
            # A late request comes after the case's verdict: the runner amends that case
            # with it, while exploration has moved on (and the next trigger cancels it on
            # the sim), so what exploration judges is the cycle without it.
            if r.purpose == "sip-pnp" or r.late:
                continue
            if not _is_ip(r.host) and r.host.lower() not in asked:
                asked.add(r.host.lower())
                t += 0.001
                dns.append(Observed(t, "dns", None, r.host))
            if r.purpose in ("firmware", "configuration"):
                t += 0.001
                files.append(Observed(t, r.scheme, r.url, r.host))
        return Trial(case, self.name, self.model, self.mac, self.firmware, tuple(files),
                     tuple(dns), None, self.lab_ip)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


class LaneOracle:
    """A phone of the rig: each run is one provisioning cycle through :class:`LabSession`."""

    def __init__(self, session: Any, lane_name: str) -> None:
        self.session = session
        self.lane = session.lanes[lane_name]
        self.name = lane_name
        self.model = self.lane.spec.model
        self.calls = 0

    @property
    def firmware(self) -> str:
        return str(self.lane.firmware or self.lane.spec.firmware)

    @property
    def profile(self) -> Any:
        return self.lane.profile

    def run(self, case: Case) -> Trial:
        self.calls += 1
        entry = self.session.run_case(self.lane, case)
        return Trial.from_entry(case, entry, self.session.lab_ip)
