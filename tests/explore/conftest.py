"""Shared pieces of the exploration tests: the sim's profile and the planner reference."""

from __future__ import annotations

from framework.lab.catalogue import LAB_NAME, Case
from framework.resolution import Profile, get_profile
from framework.sim.firmware import Faithful400HD

LAB_IP = "192.0.2.1"

#: The faithful sim firmware's choices where the manual is silent, as a saved profile:
#: what an exploration of the faithful sim under 2.2 infers (test_engine checks that).
SIM_PROFILE: Profile = Profile.from_dict({
    "name": "sim-faithful", "base": "2.2",
    "switches": {"url_option_bare_host": "no-url", "option43_format": "auto",
                 "option67_single_name": "firmware"}})

#: Disagreements between the faithful sim and the core that exploration found and that no
#: switch value explains (reported to the core's owner); each is (kind, about).
#: - a lone ';' in Option 66 ('{ip}/;', '{ip}/dir/;') with 67 names: the sim takes the
#:   ';' as "names given" (67 ignored, default names), the core uses 67 and calls it
#:   unspecified (T10-2/x-empty-names; exploration shrank the '{ip}/dir/;' form to
#:   '{ip}/;', which the core had promised as Table 10-2 row 3).
#: - with a third ';'-separated name the sim keeps ';rest' in the configuration name;
#:   the core's extra_names switch has no such value, and the core calls the outcome
#:   *promised* (T10-1/firmware-config) although extra names are an unclear reading.
KNOWN_GAPS = {("unexplained", "configuration:path")}
KNOWN_GAPS_EXTRA_NAMES = {("unexplained", "configuration:path"),
                          ("failure", "configuration:path")}


def planned(deviations: set[str], case: Case, model: str = "440HD",
            mac: str = "00908F000001") -> list[tuple[str, str]]:
    """What the lab can see of the sim firmware's plan (the e2e tests' reference)."""
    plan = Faithful400HD(deviations=deviations).plan(
        case.render(LAB_IP, LAB_NAME), model=model, mac=mac,
        settings={"provisioning/url_option_value": str(case.url_option)})
    return [(r.purpose, r.host if r.purpose == "redirect" else r.url) for r in plan.requests
            if r.purpose != "sip-pnp"]


def base_profile() -> Profile:
    return get_profile("2.2")
