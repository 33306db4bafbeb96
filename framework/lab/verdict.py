"""Verdicts: what the phone requested on the wire against what the core expects.

Pure logic. *passed*: every expected URL requested, in the manual's order, nothing else;
*failed*: the phone requested something else, more or less (the reason says which URL
and how); *broken*: the rig failed, decided before this module is reached; *observed*:
the profile does not promise this outcome, so the comparison is recorded, not judged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from framework.resolution import ExpectedProvisioning, Interpretation, Promise, urls_match

#: Names a 400HD may look up when no provisioning option yields a URL (PROVISIONING.md:
#: the HTTPS redirect server); an attempt is recorded, and allowed only in that case.
REDIRECT_NAMES = ("redirect.audiocodes.com",)


class Verdict(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    BROKEN = "broken"
    OBSERVED = "observed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Observed:
    """One request seen on the wire, reduced to what a verdict needs."""

    time: float
    protocol: str
    url: str | None  # None for DNS
    host: str | None
    outcome: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "protocol": self.protocol, "url": self.url,
                "host": self.host, "outcome": self.outcome, "detail": self.detail}


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    reason: str
    differences: tuple[str, ...] = field(default=())
    matches: bool = False


def _host_of(url: str) -> str:
    rest = url.split("://", 1)[-1]
    authority = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if authority.startswith("["):
        return authority[1:authority.find("]")]
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def describe_difference(expected: str, observed: str, mac: str) -> str:
    """Say how two URLs differ, in the terms a firmware engineer uses."""
    e_proto, _, e_rest = expected.partition("://")
    o_proto, _, o_rest = observed.partition("://")
    e_auth, _, e_path = e_rest.partition("/")
    o_auth, _, o_path = o_rest.partition("/")
    parts = []
    if e_proto.lower() != o_proto.lower():
        parts.append(f"protocol {o_proto} instead of {e_proto}")
    if e_auth != o_auth:
        parts.append("host case differs" if e_auth.lower() == o_auth.lower()
                     else f"server {o_auth} instead of {e_auth}")
    if e_path != o_path:
        if e_path.lower() == o_path.lower():
            parts.append("MAC case differs" if mac.lower() in e_path.lower() else
                         "file name case differs")
        else:
            parts.append(f"path /{o_path} instead of /{e_path}")
    return ", ".join(parts) or "same URL"


def judge(expected: ExpectedProvisioning, files: Sequence[Observed], dns: Sequence[Observed],
          *, mac: str, interp: Interpretation) -> Judgement:
    """Compare the phone's file requests (and DNS look-ups) with the expectation."""
    diffs: list[str] = []
    wanted = list(expected.requests)
    seen = [o for o in files if o.url]

    def matches(url: str, o: Observed) -> bool:
        return o.url is not None and urls_match(url, o.url, mac=mac, interp=interp)

    first_index: dict[str, int] = {}
    unmatched_obs = [o for o in seen if not any(matches(w.url, o) for w in wanted)]
    missing = []
    for want in wanted:
        idx = next((i for i, o in enumerate(seen) if matches(want.url, o)), None)
        if idx is None:
            missing.append(want)
        else:
            first_index[want.purpose] = idx
    spare = list(unmatched_obs)
    for want in missing:
        is_fw = want.purpose == "firmware"
        guess = next((o for o in spare if o.url and o.url.lower().endswith(".img") == is_fw),
                     spare[0] if spare else None)
        if guess is not None and guess.url:
            spare.remove(guess)
            diffs.append(f"{want.purpose}: expected {want.url}, requested {guess.url} "
                         f"({describe_difference(want.url, guess.url, mac)})")
        else:
            diffs.append(f"{want.purpose}: expected {want.url}, not requested")
    for o in spare:
        diffs.append(f"unexpected request {o.url} ({o.protocol})")
    if "firmware" in first_index and "configuration" in first_index \
            and first_index["configuration"] < first_index["firmware"]:
        diffs.append("configuration requested before firmware (Admin Manual 10.1: firmware "
                     "first, then the configuration file)")
    hosts = {_host_of(w.url).lower() for w in wanted}
    for q in dns:
        name = (q.host or "").rstrip(".").lower()
        if not name or name in hosts:
            continue
        if not wanted and name in REDIRECT_NAMES:
            continue  # documented fallback when no option yields a URL
        diffs.append(f"unexpected DNS query for {q.host}")

    agree = not diffs
    if expected.promise is not Promise.PROMISED:
        what = "matches the core's expectation" if agree else "; ".join(diffs)
        return Judgement(Verdict.OBSERVED,
                         f"not promised by profile {expected.profile} "
                         f"({expected.promise.value}, rule {expected.rule}): {what}",
                         tuple(diffs), agree)
    if agree:
        n = len(wanted)
        reason = (f"requested the {n} expected URL{'s' if n != 1 else ''} in order, nothing else"
                  if n else "requested nothing, as expected")
        return Judgement(Verdict.PASSED, reason, (), True)
    return Judgement(Verdict.FAILED, "; ".join(diffs), tuple(diffs), False)
