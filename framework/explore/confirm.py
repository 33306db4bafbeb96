"""Confirmation: a disagreement is a finding only when its minimal input reproduces.

Shrinking accepts a simpler input on one phone run, so one stray observation (a request
the phone made late for an earlier input, a rig hiccup) can carry the shrinker to an input
that shows nothing. Every minimal input is therefore given to the phone again
``confirm`` times; it is a *finding* only when every re-run shows the same disagreement
(``reproduced 3/3``). When it does not, the input exploration first saw the disagreement
on is confirmed the same way and, if that one reproduces every time, it is reported
instead (unshrunk, with a note). Anything else is *flaky*: listed apart, with what the
phone requested in each attempt, never counted as a finding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from framework.explore.assess import Trial
from framework.runner.catalogue import Case


@dataclass(frozen=True)
class Attempt:
    """One re-run of an input: what the phone did, and whether it showed the disagreement."""

    trial: Trial
    shows: bool

    def to_dict(self) -> dict[str, Any]:
        t = self.trial
        return {"shows": self.shows, "requests": t.requested,
                "dns": [o.host for o in t.dns], "broken": t.broken,
                "excluded": [o.url or o.host for o in t.excluded]}


@dataclass
class Confirmation:
    """The re-runs of one input."""

    case: Case
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def runs(self) -> int:
        return len(self.attempts)

    @property
    def reproduced(self) -> int:
        return sum(a.shows for a in self.attempts)

    @property
    def holds(self) -> bool:
        """Reproduced in every re-run (and there was at least one)."""
        return self.runs > 0 and self.reproduced == self.runs

    @property
    def last_showing(self) -> Trial | None:
        shown = [a.trial for a in self.attempts if a.shows]
        return shown[-1] if shown else None


def confirm(case: Case, run: Callable[[Case], Trial], still_shows: Callable[[Trial], bool],
            runs: int, on_run: Callable[[], None] | None = None) -> Confirmation:
    """Give ``case`` to the phone ``runs`` times; a broken run does not reproduce."""
    if runs < 1:
        raise ValueError(f"confirm={runs}: a finding needs at least one re-run")
    out = Confirmation(case)
    for _ in range(runs):
        trial = run(case)
        if on_run is not None:
            on_run()
        out.attempts.append(Attempt(trial, trial.broken is None and still_shows(trial)))
    return out


__all__ = ["Attempt", "Confirmation", "confirm"]
