"""Oracles: something that gives a phone a case and reports what it requested.

:class:`LaneOracle` is a phone of the rig (one lane of a :class:`LabSession`): every call
is a real provisioning cycle on the wire, so it is what exploration counts as cost.
:class:`PlannerOracle` is a simulated firmware's planner without a network: the class the
rig names (``sim.firmware: "package.module:ClassName"``, or a phone's own
``sim.phones.<name>.firmware``; :func:`planner_oracles` builds one per phone of a sim rig),
a fast stand-in used to test the grammar, the shrinker and the inference, showing what
exploration sees of a case on the wire (file requests by URL; DNS look-ups of names; of a
redirect attempt only its DNS query; no late request, no waits).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from framework.explore.assess import Trial
from framework.runner.catalogue import LAB_DNS_NAME, Case
from framework.runner.verdict import Observed
from framework.sim.config import DEFAULT_FIRMWARE, load_bench
from framework.sim.firmware import DEFAULT_SETTINGS, VirtualFirmware, load_firmware_class


class Oracle(Protocol):
    """One phone: ``run(case)`` gives it the case and returns what it did."""

    name: str
    model: str

    def run(self, case: Case) -> Trial: ...


class PlannerOracle:
    """A sim firmware class's planner as a phone, with the given deviations.

    ``firmware_class`` is the rig's ``"package.module:ClassName"`` (or the class itself);
    ``settings`` the phone's factory settings (the case's URL option is set on top).
    """

    def __init__(self, deviations: Iterable[str] = (), *, name: str = "planner",
                 model: str = "440HD", mac: str = "00908F000001", firmware: str = "2.2.8.61",
                 lab_ip: str = "192.0.2.1",
                 firmware_class: str | type[VirtualFirmware] = DEFAULT_FIRMWARE,
                 settings: Mapping[str, str] | None = None) -> None:
        cls = load_firmware_class(firmware_class) if isinstance(firmware_class, str) \
            else firmware_class
        self.firmware_impl = cls(deviations)
        self.name, self.model, self.mac, self.firmware = name, model, mac, firmware
        self.lab_ip = lab_ip
        self.settings = dict(DEFAULT_SETTINGS if settings is None else settings)
        self.calls = 0

    def run(self, case: Case) -> Trial:
        self.calls += 1
        plan = self.firmware_impl.plan(
            case.render(self.lab_ip, LAB_DNS_NAME), model=self.model, mac=self.mac,
            settings={**self.settings, "provisioning/url_option_value": str(case.url_option)})
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


def planner_oracles(rig: str | Path, phones: Iterable[str] | None = None,
                    lab_ip: str | None = None) -> list[PlannerOracle]:
    """One offline oracle per phone of a sim rig, as the sim would build that phone: the
    firmware class the rig names for it, its deviations (and those its release adds), its
    model, MAC, firmware version and factory settings. Raises the sim's one-line
    ``SimConfigError`` for a rig that does not describe a simulated bench."""
    bench = load_bench(rig)
    wanted = None if phones is None else set(phones)
    address = lab_ip or str(bench.rig.lab.address.ip)
    return [PlannerOracle(p.deviations_for(p.spec.firmware), name=p.spec.name,
                          model=p.spec.model, mac=p.spec.mac,
                          firmware=p.spec.firmware, lab_ip=address,
                          firmware_class=p.firmware_class,
                          settings={**DEFAULT_SETTINGS, **p.settings})
            for p in bench.phones if wanted is None or p.spec.name in wanted]


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
