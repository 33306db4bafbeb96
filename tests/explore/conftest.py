"""Shared pieces of the exploration tests: the sim's profile and the planner reference."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from framework.resolution import Profile, get_profile
from framework.runner.catalogue import LAB_DNS_NAME, Case
from framework.sim.firmware import DEVIATIONS, REQUEST_DEVIATIONS, Faithful400HD
from framework.sim.rigfile import MODELS

LAB_IP = "192.0.2.1"

#: The faithful sim firmware's choices where the manual is silent, as a saved profile:
#: what an exploration of the faithful sim under 2.2 infers (test_engine checks that).
SIM_PROFILE: Profile = Profile.from_dict({
    "name": "sim-faithful", "base": "2.2",
    "switches": {"url_option_bare_host": "no-url", "option43_format": "auto",
                 "option67_single_name": "firmware"}})

#: Disagreements between the faithful sim and the core that exploration found and that no
#: switch value explains (reported to the core's owner), recognised by their input (the
#: kinds of difference depend on the names drawn, and on how verdicts word them):
#: - a lone ';' in Option 66 ('{ip}/;', '{ip}/dir/;') with 67 names: the sim takes the
#:   ';' as "names given" (67 ignored, default names), the core uses 67 and calls it
#:   unspecified (T10-2/x-empty-names; exploration shrank the '{ip}/dir/;' form to
#:   '{ip}/;', which the core had promised as Table 10-2 row 3).
#: - with a third ';'-separated name the sim keeps ';rest' in the configuration name;
#:   the core's extra_names switch has no such value, and the core calls the outcome
#:   *promised* (T10-1/firmware-config) although extra names are an unclear reading.
_LONE_SEMICOLON = re.compile(r"/(?:[^;/]*/)*;[ \t]*(?:\x00)*$")


def _texts(options: Mapping[Any, Any]) -> list[str]:
    out = []
    for v in options.values():
        text = getattr(v, "text", v)
        out.append(text.decode("latin-1") if isinstance(text, bytes) else str(text))
    return out


def known_gap(options: Mapping[Any, Any], *, extra_names: bool = False) -> bool:
    """Whether a finding's minimal options are one of the known core/sim gaps above."""
    codes = {int(k) for k in options}
    v66 = next((t for k, t in zip(options, _texts(options), strict=True) if int(k) == 66),
               None)
    if v66 is not None and 67 in codes and _LONE_SEMICOLON.search(v66.strip(" \t")):
        return True
    return extra_names and any(t.count(";") >= 2 for t in _texts(options))


def planned(deviations: set[str], case: Case, model: str = "440HD",
            mac: str = "00908F000001") -> list[tuple[str, str]]:
    """What the lab can see of the sim firmware's plan (the e2e tests' reference)."""
    plan = Faithful400HD(deviations=deviations).plan(
        case.render(LAB_IP, LAB_DNS_NAME), model=model, mac=mac,
        settings={"provisioning/url_option_value": str(case.url_option)})
    return [(r.purpose, r.host if r.purpose == "redirect" else r.url) for r in plan.requests
            if r.purpose != "sip-pnp" and not r.late]


#: The deviations exploration is for: those that change what a provisioning cycle requests
#: for its DHCP inputs. Not ``reboot-after-config`` (the requests stay the faithful ones;
#: a second cycle in one case is the runner's business) nor ``late-request`` (its request
#: comes after the case's verdict: the runner amends that case, exploration has moved on).
TIMING_DEVIATIONS = frozenset(DEVIATIONS) - REQUEST_DEVIATIONS | {"late-request"}
EXPLORED_DEVIATIONS = sorted(REQUEST_DEVIATIONS - TIMING_DEVIATIONS)

#: The on-the-wire test's rigs (one phone per deviation, six phones a rig) and its budget:
#: seed, 100 generated cases a phone, shrink budget 40, 2 confirmations, no extra names.
WIRE_SEEDS = (3,)
PER_RIG = 6
WIRE_RIGS = [EXPLORED_DEVIATIONS[i:i + PER_RIG]
             for i in range(0, len(EXPLORED_DEVIATIONS), PER_RIG)]
CASES_PER_PHONE = 100
#: test_wire.py's ``hil explore`` run: ph1 faithful, ph2..ph4 one deviation each.
HIL_EXPLORE_SEED = 4
HIL_EXPLORE_DEVIATIONS = ("mac-case-flipped", "config-before-firmware", "option66-over-160")


def wire_phone(i: int) -> tuple[str, str, str]:
    """Name, model and MAC of the i-th phone (from 1) of a ``write_sim_rig`` rig."""
    return f"ph{i}", MODELS[(i - 1) % len(MODELS)], f"00908F00{i >> 8:02X}{i & 0xFF:02X}"


def base_profile() -> Profile:
    return get_profile("2.2")
