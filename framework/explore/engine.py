"""Differential exploration: generated cases on every phone, findings shrunk and confirmed.

Three phases, each counted in phone runs (a boot on real hardware):

1. *Explore*: generated cases (:mod:`.grammar`, seeded) are dealt to the phones from one
   queue, all phones in parallel, until the budget (cases) or the time is spent.
2. *Infer*: per firmware x model, the behaviour table (:mod:`.infer`) from every trial.
3. *Shrink and confirm*: every distinct disagreement is shrunk on a phone of its
   firmware x model (:mod:`.shrink`) and the minimal case re-run ``confirm`` times
   (:mod:`.confirm`): a finding only if every re-run shows it, else it is *flaky*.

The generated cases are dealt to the firmware x model groups deterministically (case
``i`` to group ``i mod G``, groups in the order of the phones), so which inputs a group
sees depends only on the seed, the budget and the rig, never on which phone was faster.

A finding is one of (``kind``):

* ``failure``: a *promised* outcome (the manual fixes it) that the phone does otherwise,
  judged under the profile in use. Always a finding, even when a switch value would
  explain it (it breaks the manual).
* ``switch``: the phone behaves as a switch value other than the profile's guess for an
  unpromised outcome; the finding is about the switch, shown with the smallest input
  where the two values differ; the behaviour table carries the value.
* ``unexplained``: an unpromised outcome no inferred switch value explains.

Distinct means a different kind, and for failures/unexplained a different set of
difference kinds (``configuration:MAC case``, ``order``... :func:`difference_kinds`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from framework.explore.assess import Assessment, Trial, assess, expectation, variant
from framework.explore.confirm import Attempt, Confirmation, confirm
from framework.explore.grammar import case_key, case_size, generate_cases
from framework.explore.infer import BehaviourRow, infer_profile, profile_document
from framework.explore.oracle import Oracle
from framework.explore.shrink import shrink
from framework.resolution import Profile, Promise
from framework.runner.catalogue import Case, VendorTlv


@dataclass
class ExploreConfig:
    """What one exploration may spend, and how it is seeded."""

    seed: int = 0
    budget: int | None = 100          # generated cases (phone runs in phase 1)
    time_s: float | None = None       # or wall-clock seconds for phase 1
    shrink_budget: int = 40           # phone runs per finding while shrinking
    confirm: int = 3                  # re-runs of each minimal case
    batch: int = 50                   # cases generated at a time in --time mode
    extra_names: bool = True          # values with a third ';'-separated name


@dataclass
class Progress:
    """The cost so far, for the progress display."""

    phase: str = "explore"
    generated: int = 0
    budget: int | None = None
    phone_runs: int = 0
    disagreements: int = 0
    findings: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def line(self) -> str:
        of = f"/{self.budget}" if self.budget is not None else ""
        return (f"[{self.phase}] cases {self.generated}{of}  phone runs {self.phone_runs}  "
                f"disagreements {self.disagreements}  findings {self.findings}  "
                f"{self.elapsed_s:.0f} s")


@dataclass
class Finding:
    kind: str                  # failure | switch | unexplained
    about: str                 # difference kinds, or "switch=value"
    firmware: str
    model: str
    phone: str
    minimal: Case
    trial: Trial
    original: Case
    occurrences: int
    reproduced: int = 0
    confirm_runs: int = 0
    shrink_steps: int = 0
    shrink_runs: int = 0
    shrink_exhausted: bool = False
    assessment: Assessment | None = None
    profile_expected: dict[str, Any] | None = None
    attempts: list[Attempt] = field(default_factory=list)
    note: str = ""

    @property
    def confirmed(self) -> bool:
        """Reproduced by every re-run: a finding. Otherwise it is flaky."""
        return self.confirm_runs > 0 and self.reproduced == self.confirm_runs

    def to_dict(self) -> dict[str, Any]:
        a = self.assessment
        return {
            "kind": self.kind, "about": self.about, "firmware": self.firmware,
            "model": self.model, "phone": self.phone,
            "minimal": self.minimal.to_dict(self.trial.lab_ip),
            "minimal_template": template(self.minimal),
            "minimal_size": {"options": case_size(self.minimal)[0],
                             "bytes": case_size(self.minimal)[1]},
            "original": self.original.to_dict(self.trial.lab_ip),
            "expected": None if a is None else {
                "rule": a.rule, "promise": a.promise.value,
                "firmware_url": a.expected.firmware_url, "config_url": a.expected.config_url,
                "explanation": a.expected.explanation},
            "inferred_expected": self.profile_expected,
            "observed": {"requests": self.trial.requested,
                         "dns": [o.host for o in self.trial.dns]},
            "differences": list(a.differences) if a else [],
            "reproduced": self.reproduced, "confirm_runs": self.confirm_runs,
            "reproductions": f"{self.reproduced}/{self.confirm_runs}",
            "attempts": [x.to_dict() for x in self.attempts], "note": self.note,
            "occurrences": self.occurrences, "shrink_steps": self.shrink_steps,
            "shrink_runs": self.shrink_runs, "shrink_exhausted": self.shrink_exhausted,
        }


def template(case: Case) -> str:
    """The case as written, placeholders and vendor TLVs kept readable."""
    parts = []
    for code, value in case.options.items():
        shown = (f"TLV(sub-option {value.suboption}: {value.text!r})"
                 if isinstance(value, VendorTlv) else repr(value))
        parts.append(f"{code}={shown}")
    if case.url_option != 160:
        parts.append(f"[provisioning/url_option_value={case.url_option}]")
    return ", ".join(parts) or "(no options)"


@dataclass
class GroupResult:
    """Everything found for one firmware x model."""

    firmware: str
    model: str
    phones: list[str]
    profile: Profile
    inferred: Profile
    behaviour: list[BehaviourRow]
    trials: list[Trial]
    findings: list[Finding]
    #: disagreements whose input did not reproduce in every re-run: not findings
    flaky: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"firmware": self.firmware, "model": self.model, "phones": self.phones,
                "profile": self.profile.name, "trials": len(self.trials),
                "broken": sum(1 for t in self.trials if t.broken),
                "excluded": sum(len(t.excluded) for t in self.trials),
                "findings": [f.to_dict() for f in self.findings],
                "flaky": [f.to_dict() for f in self.flaky],
                "behaviour": [r.to_dict() for r in self.behaviour],
                "inferred_profile": profile_document(self.inferred, self.profile)}


@dataclass
class _Job:
    kind: str
    about: str
    start: Trial
    occurrences: int
    still_shows: Callable[[Trial], bool]
    precheck: Callable[[Case], bool]


def _classify(trial: Trial, profile: Profile, inferred: Profile,
              rows: Sequence[BehaviourRow]) -> list[tuple[str, str]]:
    """The findings one trial shows: ``(kind, about)``."""
    a = assess(trial, profile)
    if a.agree:
        return []
    if a.promise is Promise.PROMISED:
        return [("failure", ",".join(sorted(a.kinds)))]
    out = []
    for row in rows:
        if row.changed:
            one = variant(profile, **{row.switch: row.inferred_value})
            if expectation(trial, one).requests != a.expected.requests and assess(
                    trial, one).agree:
                out.append(("switch", f"{row.switch}={row.inferred_value}"))
    if out:
        return out
    b = assess(trial, inferred)
    if b.agree:
        return [("switch", "+".join(f"{r.switch}={r.inferred_value}" for r in rows
                                    if r.changed))]
    return [("unexplained", ",".join(sorted(b.kinds)))]


def _job_for(kind: str, about: str, start: Trial, n: int, profile: Profile,
             inferred: Profile) -> _Job:
    # A candidate is worth a boot only if the core expects the same shape of requests
    # (firmware and/or configuration) as for the input that showed the disagreement:
    # dropping the source that yields the URLs cannot show the same difference.
    shape = _shape(expectation(start, profile))
    if kind == "failure":
        wanted = frozenset(about.split(","))

        def shows(t: Trial) -> bool:
            a = assess(t, profile)
            return not a.agree and a.promised and bool(a.kinds & wanted)

        def pre(c: Case) -> bool:
            e = _trial_like(start, c, profile)
            return e.promise is Promise.PROMISED and _shape(e) == shape
        return _Job(kind, about, start, n, shows, pre)
    if kind == "switch":
        changes = dict(part.split("=", 1) for part in about.split("+"))
        typed = {k: _typed(inferred, k) for k in changes}
        one = variant(profile, **typed)

        def shows_switch(t: Trial) -> bool:
            a = assess(t, profile)
            return not a.agree and not a.promised and assess(t, one).agree

        def pre_switch(c: Case) -> bool:
            t = _probe(start, c)
            return (expectation(t, profile).requests != expectation(t, one).requests
                    and expectation(t, profile).promise is not Promise.PROMISED)
        return _Job(kind, about, start, n, shows_switch, pre_switch)
    wanted_u = frozenset(about.split(","))

    # An unexplained difference may shrink into a case the manual promises: the same kind
    # of difference there is a firmware failure, and the finding is reported as one.
    def shows_unexplained(t: Trial) -> bool:
        a = assess(t, profile)
        if not a.agree and a.promised:
            return bool(a.kinds & wanted_u)
        b = assess(t, inferred)
        return not a.agree and not b.agree and bool(b.kinds & wanted_u)

    def pre_unexplained(c: Case) -> bool:
        return _shape(_trial_like(start, c, profile)) == shape
    return _Job(kind, about, start, n, shows_unexplained, pre_unexplained)


def _distinct(findings: Sequence[Finding]) -> list[Finding]:
    """One finding per (kind, about, minimal input): two jobs that shrank to the same input
    are one disagreement (their occurrences add up; the better confirmed one is kept)."""
    kept: dict[tuple[str, str, str], Finding] = {}
    for f in findings:
        key = (f.kind, f.about, case_key(f.minimal.options, f.minimal.url_option))
        other = kept.get(key)
        if other is None:
            kept[key] = f
            continue
        best = max(other, f, key=lambda x: (x.confirmed, x.reproduced))
        best.occurrences = other.occurrences + f.occurrences
        kept[key] = best
    return list(kept.values())


def _shape(expected: Any) -> tuple[str, ...]:
    return tuple(r.purpose for r in expected.requests)


def _typed(profile: Profile, switch: str) -> Any:
    return getattr(profile.interpretation, switch)


def _probe(like: Trial, case: Case) -> Trial:
    return Trial(case, like.phone, like.model, like.mac, like.firmware, lab_ip=like.lab_ip)


def _trial_like(like: Trial, case: Case, profile: Profile) -> Any:
    return expectation(_probe(like, case), profile)


class Explorer:
    """Runs one exploration over a set of phones (oracles) with their profiles."""

    def __init__(self, oracles: Sequence[Oracle], profiles: dict[str, Profile],
                 config: ExploreConfig,
                 on_progress: Callable[[Progress], None] | None = None) -> None:
        if config.confirm < 1:
            raise ValueError(f"confirm={config.confirm}: a finding needs at least one re-run")
        self.oracles = list(oracles)
        self.profiles = profiles
        self.config = config
        self.progress = Progress(budget=config.budget if config.time_s is None else None)
        self._on_progress = on_progress
        self._lock = threading.Lock()
        self.trials: list[Trial] = []

    def _tick(self, **changes: int) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(self.progress, k, getattr(self.progress, k) + v)
        if self._on_progress is not None:
            self._on_progress(self.progress)

    def _ran(self) -> None:
        self._tick(phone_runs=1)

    # --- phase 1 -------------------------------------------------------------------

    def _deal(self, cases: Sequence[Case], queues: Sequence[queue.Queue[Case]]) -> None:
        for i, case in enumerate(cases):
            queues[i % len(queues)].put(case)

    def explore(self) -> list[Trial]:
        cfg = self.config
        groups = list(self.groups().values())
        queues: list[queue.Queue[Case]] = [queue.Queue() for _ in groups]
        if cfg.time_s is None:
            self._deal(generate_cases(cfg.seed, cfg.budget or 0, extra_names=cfg.extra_names),
                       queues)
        deadline = time.monotonic() + cfg.time_s if cfg.time_s is not None else None
        batch = [0]
        feed_lock = threading.Lock()

        def next_case(mine: queue.Queue[Case]) -> Case | None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            try:
                return mine.get_nowait()
            except queue.Empty:
                if deadline is None:
                    return None
            with feed_lock:  # --time: generate the next seeded batch, dealt to every group
                if mine.empty():
                    batch[0] += 1
                    self._deal(generate_cases(cfg.seed * 1_000_033 + batch[0], cfg.batch,
                                              extra_names=cfg.extra_names), queues)
            try:
                return mine.get_nowait()
            except queue.Empty:
                return None

        def lane(oracle: Oracle, mine: queue.Queue[Case]) -> None:
            while (case := next_case(mine)) is not None:
                self._tick(generated=1)
                trial = oracle.run(case)
                with self._lock:
                    self.trials.append(trial)
                bad = trial.broken is None and not assess(trial, self.profiles[oracle.name]).agree
                self._tick(phone_runs=1, disagreements=int(bad))

        self._parallel([(lane, (o, q)) for members, q in zip(groups, queues, strict=True)
                        for o in members])
        return self.trials

    @staticmethod
    def _parallel(work: Sequence[tuple[Callable[..., None], tuple[Any, ...]]]) -> None:
        errors: list[BaseException] = []

        def guard(fn: Callable[..., None], args: tuple[Any, ...]) -> None:
            try:
                fn(*args)
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)

        threads = [threading.Thread(target=guard, args=(fn, args), daemon=True)
                   for fn, args in work]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    # --- phases 2 and 3 ------------------------------------------------------------

    def groups(self) -> dict[tuple[str, str], list[Oracle]]:
        out: dict[tuple[str, str], list[Oracle]] = {}
        for o in self.oracles:
            firmware = str(getattr(o, "firmware", "unknown"))
            out.setdefault((firmware, o.model), []).append(o)
        return out

    def analyse(self) -> list[GroupResult]:
        results: list[GroupResult] = []
        work: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        for (firmware, model), oracles in self.groups().items():
            names = {o.name for o in oracles}
            trials = [t for t in self.trials if t.phone in names]
            profile = self.profiles[oracles[0].name]
            self.progress.phase = "infer"
            inferred, rows = infer_profile(trials, profile)
            jobs = self._jobs(trials, profile, inferred, rows)
            group = GroupResult(firmware, model, sorted(names), profile, inferred, rows, trials,
                                [])
            results.append(group)
            per_oracle: list[list[_Job]] = [[] for _ in oracles]
            for i, job in enumerate(jobs):
                per_oracle[i % len(oracles)].append(job)
            for oracle, mine in zip(oracles, per_oracle, strict=True):
                if mine:
                    work.append((self._shrink_all, (oracle, mine, group, profile, inferred)))
        self.progress.phase = "shrink"
        self._parallel(work)
        for g in results:
            distinct = _distinct(g.findings)
            g.findings = sorted((f for f in distinct if f.confirmed),
                                key=lambda f: (f.kind, f.about))
            g.flaky = sorted((f for f in distinct if not f.confirmed),
                             key=lambda f: (f.kind, f.about))
        return results

    def _jobs(self, trials: Sequence[Trial], profile: Profile, inferred: Profile,
              rows: Sequence[BehaviourRow]) -> list[_Job]:
        seen: dict[tuple[str, str], list[Trial]] = {}
        for t in trials:
            if t.broken is None:
                for key in _classify(t, profile, inferred, rows):
                    seen.setdefault(key, []).append(t)
        jobs = []
        for (kind, about), shown in sorted(seen.items()):
            smallest = min(shown, key=lambda t: case_size(t.case))
            jobs.append(_job_for(kind, about, smallest, len(shown), profile, inferred))
        return jobs

    def _shrink_all(self, oracle: Oracle, jobs: Sequence[_Job], group: GroupResult,
                    profile: Profile, inferred: Profile) -> None:
        for job in jobs:
            result = shrink(job.start, oracle.run, job.still_shows, precheck=job.precheck,
                            budget=self.config.shrink_budget,
                            on_run=self._ran)
            checked = confirm(result.case, oracle.run, job.still_shows, self.config.confirm,
                              self._ran)
            note, steps = "", result.steps
            if not checked.holds and result.steps:
                # The shrinker took a step on one run that did not hold: the input
                # exploration saw the disagreement on is confirmed instead.
                original = confirm(job.start.case, oracle.run, job.still_shows,
                                   self.config.confirm, self._ran)
                if original.holds:
                    note = (f"the shrunk input {template(result.case)} reproduced "
                            f"{checked.reproduced}/{checked.runs}; reported unshrunk")
                    checked, steps = original, 0
            finding = self._finding(job, checked, result.trial, group, oracle, profile,
                                    inferred)
            finding.shrink_steps, finding.shrink_runs = steps, result.phone_runs
            finding.shrink_exhausted, finding.note = result.exhausted, note
            with self._lock:
                group.findings.append(finding)  # split into findings and flaky at the end
            self._tick(findings=int(finding.confirmed))

    def _finding(self, job: _Job, checked: Confirmation, shrunk: Trial, group: GroupResult,
                 oracle: Oracle, profile: Profile, inferred: Profile) -> Finding:
        # What the finding shows the phone did is a re-run that reproduced it; a flaky one
        # shows the run that showed it (its attempts are the evidence).
        last = checked.last_showing or shrunk
        ie = expectation(last, inferred)
        kind, about = job.kind, job.about
        final = assess(last, profile)
        if kind == "unexplained" and final.promised and not final.agree:
            kind, about = "failure", ",".join(sorted(final.kinds))
        return Finding(kind, about, group.firmware, group.model, oracle.name, checked.case,
                       last, job.start.case, job.occurrences, checked.reproduced,
                       checked.runs, assessment=final,
                       profile_expected={"firmware_url": ie.firmware_url,
                                         "config_url": ie.config_url},
                       attempts=list(checked.attempts))

    def run(self) -> list[GroupResult]:
        self.explore()
        return self.analyse()
