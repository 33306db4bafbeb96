"""The inferred behaviour table: which value of each core switch the phone behaves as.

For every switch of :class:`framework.resolution.Interpretation` that describes the
firmware (not the comparison and judging policies of :data:`NOT_INFERRED`), each value is
scored by how many trials the core then agrees with; a value replaces the profile's only
when it explains strictly more trials (ties keep the profile's value). Rounds repeat
until nothing changes, so switches that interact settle together. The result is a
:class:`Profile` whose ``to_dict()`` loads back with ``Profile.from_dict``: the observed
behaviour of a release becomes data the core uses in the next regression run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from framework.explore.assess import Trial, assess, expectation, variant
from framework.resolution import PROFILES, Interpretation, Profile
from framework.resolution.profiles import literal_values

#: Switches that say how the lab compares or judges, or that no trial can show (Option 77
#: is what the phone sends, not what it requests).
NOT_INFERRED = ("mac_compare", "host_compare", "url_compare", "judged_grounds",
                "option43_promised", "option77_encoding")


def switch_values(name: str, trials: Sequence[Trial] = ()) -> tuple[Any, ...]:
    values = literal_values(name)
    if values is not None:
        return tuple(values)
    if name == "option43_suboption":
        return (1, 2)
    if name == "max_value_length":
        return (None, 255)
    return ()


def inferable() -> list[str]:
    return [f.name for f in dataclasses.fields(Interpretation)
            if f.name not in NOT_INFERRED and len(switch_values(f.name)) > 1]


@dataclass(frozen=True)
class BehaviourRow:
    """One row of the inferred table: a switch, the profile's value and the phone's."""

    switch: str
    profile_value: Any
    inferred_value: Any
    #: Trials where the two values expect different requests, and which one the phone did.
    mattered: int
    for_inferred: int
    for_profile: int

    @property
    def changed(self) -> bool:
        return self.inferred_value != self.profile_value

    def to_dict(self) -> dict[str, Any]:
        return {"switch": self.switch, "profile_value": self.profile_value,
                "inferred_value": self.inferred_value, "changed": self.changed,
                "mattered": self.mattered, "for_inferred": self.for_inferred,
                "for_profile": self.for_profile}


class _Memo:
    """Expectations and agreements per (trial, profile): inference asks for them often."""

    def __init__(self) -> None:
        self._req: dict[tuple[int, Profile], tuple[str | None, str | None]] = {}
        self._agree: dict[tuple[int, Profile], bool] = {}

    def requests(self, t: Trial, profile: Profile) -> tuple[str | None, str | None]:
        key = (id(t), profile)
        if key not in self._req:
            e = expectation(t, profile)
            self._req[key] = (e.firmware_url, e.config_url)
        return self._req[key]

    def agreeing(self, trials: Sequence[Trial], profile: Profile) -> int:
        n = 0
        for t in trials:
            key = (id(t), profile)
            if key not in self._agree:
                self._agree[key] = assess(t, profile).agree
            n += self._agree[key]
        return n


def infer_profile(trials: Sequence[Trial], base: Profile, *, name: str | None = None,
                  max_rounds: int = 3) -> tuple[Profile, list[BehaviourRow]]:
    """The profile that explains the most trials, starting from ``base``, and its table."""
    usable = [t for t in trials if t.broken is None]
    memo = _Memo()
    _requests, _agreeing = memo.requests, memo.agreeing
    current = base
    for _ in range(max_rounds):
        changed = False
        for switch in inferable():
            here = getattr(current.interpretation, switch)
            best_value, best_score = here, None
            for value in switch_values(switch):
                if value == here:
                    continue
                other = variant(current, **{switch: value})
                relevant = [t for t in usable if _requests(t, other) != _requests(t, current)]
                if not relevant:
                    continue
                score = _agreeing(relevant, other) - _agreeing(relevant, current)
                if score > 0 and (best_score is None or score > best_score):
                    best_value, best_score = value, score
            if best_value != here:
                current = variant(current, **{switch: best_value})
                changed = True
        if not changed:
            break
    rows = []
    for switch in inferable():
        was, now = getattr(base.interpretation, switch), getattr(current.interpretation, switch)
        mattered = for_now = for_was = 0
        if was != now:
            other = variant(current, **{switch: was})
            relevant = [t for t in usable if _requests(t, other) != _requests(t, current)]
            mattered = len(relevant)
            for_now = _agreeing(relevant, current)
            for_was = _agreeing(relevant, other)
        rows.append(BehaviourRow(switch, was, now, mattered, for_now, for_was))
    profile = dataclasses.replace(
        current, name=name or f"{base.name}-inferred",
        title=f"inferred by differential exploration from profile {base.name}")
    return profile, rows


def profile_document(profile: Profile, base: Profile) -> dict[str, Any]:
    """``Profile.to_dict()`` plus a built-in base (``from_dict`` reads both).

    The document carries every switch and the pending rules itself, so the base only
    names where it came from; a base that is itself a saved profile is named in the title.
    """
    builtin = base.name if base.name in PROFILES else "2.2"
    return {**profile.to_dict(), "base": builtin}
