"""The rig probe: did the rig work during a case? A firmware verdict needs a yes.

Three questions, each answered from evidence rather than hope: do our own services answer
(:class:`~framework.runner.probe.ServiceProbe`; a service that served the phone in the case
is alive without a probe), does the phone's power and console still answer (its link's
health check), and did a DHCP server other than ours answer the phone (the foreign-DHCP
watch). Any "no" makes the case *broken*, never *failed*.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from framework.resolution import ExpectedProvisioning
from framework.rig import PhoneSpec
from framework.runner.cycle import CaseWindow
from framework.runner.probe import ServiceProbe
from framework.runner.verdict import Observed


class RigProbe:
    """Health of the lab side and of one phone's link, per case."""

    def __init__(self, lab_ip: str, dhcp: Any, foreign_dhcp: Any) -> None:
        self.services = ServiceProbe(lab_ip)
        self.dhcp = dhcp
        self.foreign_dhcp = foreign_dhcp

    def services_fault(self, needed: set[str] | None = None,
                       alive: set[str] | frozenset[str] = frozenset(),
                       since: float | None = None) -> str | None:
        """Whether our own services (all, or the ``needed`` protocols) answer; a liveness
        older than ``since`` does not count."""
        return self.services.fault(needed, alive=alive, since=since)

    def rig_fault(self, name: str, link: Any, needed: set[str] | None = None,
                  alive: set[str] | frozenset[str] = frozenset(),
                  since: float | None = None) -> str | None:
        """Our services first, then the phone's power and console (``link.health()``)."""
        fault = self.services_fault(needed, alive=alive, since=since)
        if fault is None and link is not None:
            problem = link.health()
            if problem:
                fault = f"{name}: {problem}"
        return fault

    def foreign_fault(self, spec: PhoneSpec, since: float, until: float | None = None
                      ) -> str | None:
        """A foreign DHCP server's answer to this phone (or to everyone) in the case that
        began at ``since`` (and ended at ``until``): one that arrived in it, or one to a
        DISCOVER/REQUEST the phone sent in it (same xid), whenever it came."""
        if self.foreign_dhcp is None:
            return None
        xids = {m.xid for m in self.dhcp.transcript(spec.mac_colon)
                if m.direction == "received" and m.time >= since
                and (until is None or m.time < until)}
        seen = self.foreign_dhcp.seen(since, mac=spec.mac_colon, until=until)
        seen += [m for m in self.foreign_dhcp.seen(since, mac=spec.mac_colon, xids=xids)
                 if m not in seen]
        seen.sort(key=lambda m: m.time)
        return str(self.foreign_dhcp.describe(seen)) if seen else None

    def dhcp_summary(self, spec: PhoneSpec, since: float) -> str:
        """What DHCP saw of the phone since ``since``, when it did not get a lease."""
        msgs = [m for m in self.dhcp.transcript(spec.mac_colon) if m.time >= since]
        if any(m.direction == "sent" and m.message_type == "ACK" for m in msgs):
            return ""
        got = [m for m in msgs if m.direction == "received"]
        if not got:
            return "no DHCP DISCOVER from the phone; "
        ignored = any(m.ignored for m in got)
        kinds = sorted({m.message_type for m in got})
        return (f"no DHCP lease ({len(got)} {'/'.join(kinds)} from the phone"
                f"{', all ignored by the lab DHCP server' if ignored else ', no ACK'}); ")


def served(window: CaseWindow) -> set[str]:
    """The services that answered the phone in this case: alive, no probe needed."""
    return {r.protocol for c in window.cycles for r in c.records
            if r.outcome in ("served", "not-found")}


def needed_services(expected: ExpectedProvisioning, files: Sequence[Observed] = (),
                    dns: Sequence[Observed] = ()) -> set[str]:
    """The lab services a case depends on: the protocols it expects or saw, and DNS when a
    host name is involved."""
    needed = {o.protocol for o in files}
    if dns:
        needed.add("dns")
    for req in expected.requests:
        proto, _, rest = req.url.partition("://")
        needed.add(proto)
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1].strip("[]")
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            needed.add("dns")
    return needed
