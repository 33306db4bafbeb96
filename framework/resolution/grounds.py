"""Grounds: why each expectation of a case is expected, and which ones a profile judges.

Every assertion a verdict makes about a case (each expected request, their order, "nothing
else", the case of the MAC) carries a :class:`Ground`: ``manual`` (document, section, the
quoted sentence or table cell), ``field`` (which capture or integrator practice) or ``lab``
(a convention of ours). The grounds are data (framework/resolution/grounds.toml, one per
rule of rules.toml and one per assertion that is not a rule); the switch
``judged_grounds`` of a profile says which kinds give verdicts (default ``manual`` and
``field``), the others are recorded as observed (design/REAL-PHONE.md, "Grounds of a
verdict"; issue 16).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from framework.resolution.model import ExpectedProvisioning, Promise, ResolutionInputError
from framework.resolution.profiles import RULES, Interpretation

GroundKind = Literal["manual", "field", "lab"]
GROUND_KINDS: tuple[GroundKind, ...] = ("manual", "field", "lab")


@dataclass(frozen=True)
class Ground:
    """Why an expectation is expected: kind, where it comes from, and the words."""

    id: str
    kind: GroundKind
    source: str
    quote: str
    #: The quote is verbatim in the seed excerpt of the manual (docs/manual/).
    excerpt: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "quote": self.quote}


def load_grounds(text: str, where: str = "grounds.toml") -> dict[str, Ground]:
    """The ground table from its TOML text; a malformed table fails at import, naming the
    ground and the key."""
    out: dict[str, Ground] = {}
    for n, row in enumerate(tomllib.loads(text).get("ground", []), 1):
        gid = row.get("id", f"#{n}")
        keys = set(row)
        if not {"id", "kind", "source", "quote"} <= keys <= {"id", "kind", "source", "quote",
                                                             "excerpt"}:
            raise ResolutionInputError(f"{where}: ground {gid}: keys must be id, kind, source, "
                                       f"quote (and excerpt); got {sorted(keys)}")
        if row["kind"] not in GROUND_KINDS:
            raise ResolutionInputError(f"{where}: ground {gid}: kind {row['kind']!r} is not "
                                       "one of " + ", ".join(GROUND_KINDS))
        if not str(row["quote"]).strip() or not str(row["source"]).strip():
            raise ResolutionInputError(f"{where}: ground {gid}: empty source or quote")
        if gid in out:
            raise ResolutionInputError(f"{where}: ground {gid} appears twice")
        out[gid] = Ground(gid, row["kind"], row["source"], row["quote"],
                          bool(row.get("excerpt", False)))
    return out


#: Every ground, by rule id or assertion id (framework/resolution/grounds.toml).
GROUNDS: dict[str, Ground] = load_grounds(
    resources.files("framework.resolution").joinpath("grounds.toml").read_text(encoding="utf-8"))

_missing = sorted(set(RULES) - set(GROUNDS))
if _missing:  # a rule without a ground must never judge a phone
    raise ResolutionInputError(f"grounds.toml: rule {_missing[0]} has no ground")


def judged_kinds(interp: Interpretation) -> frozenset[str]:
    """The ground kinds the switch ``judged_grounds`` judges (``"manual,field"`` -> both)."""
    return frozenset(interp.judged_grounds.split(","))


@dataclass(frozen=True)
class Assertion:
    """One expectation of a case, with its ground and whether the profile judges it.

    ``id`` says what is checked (``request/firmware``, ``request/configuration``,
    ``mac-case``, ``order``, ``nothing-else``); ``what`` and ``expected`` say it in words.
    """

    id: str
    what: str
    expected: str
    judged: bool
    ground: Ground

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "what": self.what, "expected": self.expected,
                "judged": self.judged, "ground": self.ground.to_dict()}


def rule_ground(rule: str) -> Ground:
    """The ground of a (composite) rule id: that of its first part, the table row or form
    that gave the URLs (the other parts say how the value was read)."""
    return GROUNDS.get(rule.split("+", 1)[0], GROUNDS["none"])


def mac_in(url: str, mac: str) -> bool:
    """Whether ``url``'s file name holds ``mac`` (any case) with a letter in it, so that
    its case can differ."""
    return any(c.isalpha() for c in mac) and mac.lower() in url.rsplit("/", 1)[-1].lower()


def assertions(expected: ExpectedProvisioning, interp: Interpretation, mac: str
               ) -> tuple[Assertion, ...]:
    """Every assertion a verdict makes about ``expected``, in the order a reason names them.

    An assertion is judged when the case is promised and its ground's kind is one the
    profile judges (switch ``judged_grounds``); otherwise it is observed.
    """
    kinds = judged_kinds(interp)
    promised = expected.promise is Promise.PROMISED

    def make(aid: str, what: str, exp: str, ground: Ground) -> Assertion:
        return Assertion(aid, what, exp, promised and ground.kind in kinds, ground)

    row = rule_ground(expected.rule)
    out = [make(f"request/{r.purpose}", f"the {r.purpose} request", r.url, row)
           for r in expected.requests]
    cfg = expected.config_url
    if interp.mac_compare == "exact" and any(mac_in(r.url, mac) for r in expected.requests):
        shown = mac.upper() if interp.mac_case == "upper" else mac.lower()
        out.append(make("mac-case", "the case of the MAC in the file names",
                        f"{shown} ({interp.mac_case} case)",
                        GROUNDS[f"mac-case/{interp.mac_case}"]))
    if expected.firmware_url is not None and cfg is not None:
        out.append(make("order", "the order of the requests",
                        "firmware first, then the configuration file", GROUNDS["order"]))
    if expected.requests:
        out.append(make("nothing-else", "nothing else requested",
                        "no other file request and no DNS query but for the expected servers",
                        GROUNDS["nothing-else"]))
    else:
        ground = GROUNDS["none"] if expected.rule == "none" else row
        out.append(make("nothing-else", "nothing requested",
                        "no firmware or configuration request and no DNS query (the redirect "
                        "server's name is allowed)", ground))
    return tuple(out)


def late_assertion(expected: ExpectedProvisioning, interp: Interpretation) -> Assertion:
    """That nothing comes after the cycle fell quiet (a lab convention: judged only when
    the profile judges ``lab`` grounds and the case is promised)."""
    ground = GROUNDS["late"]
    return Assertion("late", "nothing requested after the phone fell quiet",
                     "no request once the phone has been quiet for the settle window",
                     expected.promise is Promise.PROMISED
                     and ground.kind in judged_kinds(interp), ground)


def identification_assertions(model: str, url_option: int, interp: Interpretation
                              ) -> tuple[Assertion, ...]:
    """What the phone must say about itself in every DHCP DISCOVER and REQUEST (issue 16
    item 7): its model name in Options 60 and 77, and Option 55 asking for 66, 67 and the
    URL option. Judged in every case (promised or not) when the ground's kind is judged."""
    kinds = judged_kinds(interp)
    model_ground = GROUNDS["identification/model"]
    prl_ground = GROUNDS["identification/parameter-list"]
    encoding = {"either": "raw or RFC 3004", "rfc3004": "RFC 3004 length-prefixed",
                "raw": "raw"}[interp.option77_encoding]
    return (
        Assertion("identification/60", "the model name in Option 60 (vendor class)", model,
                  model_ground.kind in kinds, model_ground),
        Assertion("identification/77", "the model name in Option 77 (user class)",
                  f"{model} ({encoding})", model_ground.kind in kinds, model_ground),
        Assertion("identification/55", "the options asked for in Option 55",
                  f"66, 67, {url_option}", prl_ground.kind in kinds, prl_ground),
    )
