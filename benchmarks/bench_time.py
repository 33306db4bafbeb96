"""How long a full certification takes on a real 4-phone bench, per trigger, predicted from
a time-scaled sim.

    .venv/bin/python benchmarks/bench_time.py [--phones 4] [--cases 24]
        [--triggers check-sync,web-reboot,power-cycle] [--scales 0.02,0.05]
        [--boot 60] [--settle 3] [--cycle 4] [--json]

A real 400HD boots in about a minute; a check-sync cycle needs no boot; the lab serves
``random_provisioning_time=0`` so no phone waits its random delay. The sim runs those
timings scaled by ``s`` (``sim.time_scale``: boot 60 s x s), so a run's wall time is
``W(s) = A + B*s``: ``B`` is the phones' scaled time (boots), ``A`` what does not scale
(the lab's own work: DHCP, transfers, judging, evidence, the PDU's off time, the sim's
settle window). Two scales give ``A`` and ``B``; ``W(1) = A + B`` is the sample at real
phone timings. Per DHCP cycle of the busiest lane (cases, settings cycles, restarts;
counted from the lab's DHCP ACKs) the prediction then adds what a real phone spends that
the sim does not model (``--cycle``, default 4 s: its DHCP exchange and file fetches) and
the real settle window in place of the sim's. The full matrix is that per case times the
catalogue's cases per phone. Printed per trigger: the
measured walls, ``A``, ``B``, the prediction and its ratio to check-sync's; the run's
verdicts must all be passed or observed (else the figure is not a certification's).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import (
    ALL_CASES,
    TRIGGERS,
    BenchError,
    OneLineParser,
    check_phones,
    positive,
    prefix,
    select_cases,
)

#: The sim runs' settle window: the sim's own default, safe under load (a shorter one
#: makes a transfer that pauses under load a late request). Not scaled: the real bench's
#: settle window replaces it per cycle in the prediction.
SIM_SETTLE_S = 0.6


@dataclass
class Fit:
    trigger: str
    scales: list[float]
    walls_s: list[float]
    verdicts: list[dict[str, int]]
    cases_per_phone: int
    full_cases_per_phone: int
    #: DHCP cycles of the busiest lane in the sample (cases, settings cycles, restarts)
    cycles: int
    #: a real phone's own time per cycle that the sim does not model (DHCP and fetching)
    cycle_s: float
    #: the real bench's settle window, and the sim runs' (not scaled: the lab's own wait)
    settle_s: float
    sim_settle_s: float
    not_passed: list[dict[str, str]] = field(default_factory=list)

    @property
    def slope_s(self) -> float:
        """B: what scales with the phones' timings. A trigger without boots has nearly
        none, and the two walls' noise divided by the scales' difference could make it
        negative: it is never below 0 (then A is the walls' mean)."""
        (s1, s2), (w1, w2) = self.scales[:2], self.walls_s[:2]
        return max(0.0, (w2 - w1) / (s2 - s1))

    @property
    def fixed_s(self) -> float:  # A: the lab's own work, not scaled
        if self.slope_s == 0.0:
            return sum(self.walls_s) / len(self.walls_s)
        return self.walls_s[0] - self.slope_s * self.scales[0]

    @property
    def sample_real_s(self) -> float:
        """The sample at real timings: the fit at s=1, and per cycle the phone's own time
        and the real settle window in place of the sim's."""
        return self.fixed_s + self.slope_s + self.cycles * (
            self.cycle_s + self.settle_s - self.sim_settle_s)

    @property
    def predicted_s(self) -> float:
        """The full matrix on a real bench: the sample at real timings, per case, times the
        catalogue's cases per phone (lanes run in parallel)."""
        return self.sample_real_s / self.cases_per_phone * self.full_cases_per_phone

    def to_dict(self) -> dict[str, Any]:
        return {"trigger": self.trigger, "scales": self.scales,
                "walls_s": [round(w, 2) for w in self.walls_s],
                "fixed_s": round(self.fixed_s, 2), "scaled_s": round(self.slope_s, 2),
                "sample_cases_per_phone": self.cases_per_phone, "cycles": self.cycles,
                "cycle_s": self.cycle_s,
                "full_cases_per_phone": self.full_cases_per_phone,
                "sample_real_s": round(self.sample_real_s, 1),
                "predicted_full_s": round(self.predicted_s, 1),
                "predicted_full_h": round(self.predicted_s / 3600, 2),
                "verdicts": self.verdicts, "not_passed": self.not_passed[:5]}


def run_once(directory: Path, trigger: str, scale: float, args: argparse.Namespace,
             cases: list[Any]) -> tuple[float, dict[str, int], list[dict[str, str]], int]:
    """One timed run of ``cases`` on every phone at time scale ``scale``: its wall time,
    verdicts, what did not pass, and the DHCP cycles of its busiest lane."""
    from framework.errors import RigFault
    from framework.runner.cycle import new_lease
    from framework.runner.options import RunOptions
    from framework.runner.session import LabSession
    from framework.sim.rigfile import write_sim_rig

    tag = "abcdefghijklmnop"[TRIGGERS.index(trigger) * 2 + (scale != args.scale_list[0])]
    rig = write_sim_rig(directory / f"rig-{tag}.yaml", prefix=prefix(tag), phones=args.phones,
                        boot_time_s=args.boot, time_scale=scale)
    options = RunOptions(rig_path=rig, reports_dir=directory / "reports", trigger=trigger,  # type: ignore[arg-type]
                         settle_s=SIM_SETTLE_S, request_timeout_s=4.0,
                         boot_timeout_s=max(args.boot * scale * 4, 20.0),
                         random_provisioning_time=0, capture=False)

    session = LabSession(options)
    try:
        session.start()
    except RigFault as exc:
        raise BenchError(f"{rig}: rig not usable: {exc}") from None
    try:
        broken = {n: ln.broken for n, ln in session.lanes.items() if ln.broken}
        if broken:
            name, why = next(iter(broken.items()))
            raise BenchError(f"phone {name} quarantined at start: {why}")
        items = [(c, name) for name in session.lanes for c in cases]
        t0 = time.monotonic()
        session.schedule(items)
        started = time.time() - (time.monotonic() - t0)
        results = [session.result(c.id, name, timeout=3600) for c, name in items]
        wall = time.monotonic() - t0
        cycles = max(sum(1 for m in session.dhcp.transcript(lane.spec.mac_colon)
                         if m.time >= started and new_lease(m))
                     for lane in session.lanes.values())
    finally:
        session.stop()
    verdicts: dict[str, int] = {}
    for r in results:
        verdicts[r.verdict] = verdicts.get(r.verdict, 0) + 1
    bad = [{"id": r.id, "phone": r.phone, "verdict": r.verdict, "reason": r.reason}
           for r in results if r.verdict not in ("passed", "observed")]
    return wall, verdicts, bad, cycles


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--phones", type=positive(int, "--phones"), default=4)
    p.add_argument("--cases", type=positive(int, "--cases"), default=24,
                   help="cases per phone in the sample (default 24)")
    p.add_argument("--triggers", default="check-sync,web-reboot,power-cycle")
    p.add_argument("--scales", default="0.02,0.05", help="two time scales to fit A + B*s")
    p.add_argument("--boot", type=positive(float, "--boot"), default=60.0,
                   help="a real phone's boot, seconds (default 60)")
    p.add_argument("--settle", type=positive(float, "--settle"), default=3.0,
                   help="a real bench's settle window, seconds (default 3)")
    p.add_argument("--cycle", type=positive(float, "--cycle"), default=4.0,
                   help="a real phone's own time per provisioning cycle that the sim does "
                   "not model: DHCP and fetching its files (default 4)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    args = p.parse_args(argv)
    logging.getLogger().setLevel(logging.ERROR)  # the TFTP server's "not found" lines
    try:
        from framework.netns import have_privileges

        ok, why = have_privileges()
        if not ok:
            raise BenchError(f"needs root for network namespaces ({why})")
        check_phones(args.phones)
        triggers = [t.strip() for t in args.triggers.split(",") if t.strip()]
        unknown = [t for t in triggers if t not in TRIGGERS]
        if unknown:
            raise BenchError(f"--triggers: unknown {unknown[0]!r} (known: {', '.join(TRIGGERS)})")
        try:
            scales = sorted(float(x) for x in args.scales.split(","))
        except ValueError:
            scales = []
        if len(scales) != 2 or scales[0] <= 0 or scales[0] == scales[1]:
            raise BenchError("--scales: two different positive scales, e.g. 0.02,0.05")
        args.scale_list = scales
        cases = select_cases(args.cases)
        fits = []
        with tempfile.TemporaryDirectory(prefix="hil-bench-time-") as tmp:
            for trigger in triggers:
                walls, verdicts, bad, cycles = [], [], [], []
                for scale in scales:
                    wall, counted, wrong, n = run_once(Path(tmp), trigger, scale, args, cases)
                    walls.append(wall)
                    verdicts.append(counted)
                    bad += wrong
                    cycles.append(n)
                fits.append(Fit(trigger, scales, walls, verdicts, len(cases), len(ALL_CASES),
                                max(cycles), args.cycle, args.settle, SIM_SETTLE_S, bad))
    except BenchError as exc:
        print(f"bench_time: {exc}", file=sys.stderr)
        return 2
    base = next((f for f in fits if f.trigger == "check-sync"), fits[0])
    doc = {"phones": args.phones, "boot_s": args.boot, "settle_s": args.settle,
           "sim_settle_s": SIM_SETTLE_S,
           "cycle_s": args.cycle,
           "random_provisioning_time": 0,
           "fits": [{**f.to_dict(), "ratio_to_" + base.trigger:
                     round(f.predicted_s / base.predicted_s, 2)} for f in fits]}
    if args.json:
        print(json.dumps(doc))
    else:
        print(f"full certification ({len(ALL_CASES)} cases x {args.phones} phones), real "
              f"timings: boot {args.boot:g} s, settle {args.settle:g} s, random "
              f"provisioning time 0, {args.cycle:g} s of a phone's own per DHCP cycle "
              f"(sample: {len(cases)} cases per phone)")
        for f in fits:
            print(f"  {f.trigger:12} walls {' / '.join(f'{w:.1f}' for w in f.walls_s)} s at "
                  f"scales {' / '.join(map(str, f.scales))}: fixed {f.fixed_s:.1f} s + "
                  f"scaled {f.slope_s:.0f} s + {f.cycles} cycles -> predicted "
                  f"{f.predicted_s / 60:.0f} min "
                  f"(ratio to {base.trigger}: {f.predicted_s / base.predicted_s:.2f})"
                  + (f"; NOT ALL PASSED: {len(f.not_passed)}" if f.not_passed else ""))
    return 1 if any(f.not_passed for f in fits) else 0


if __name__ == "__main__":
    sys.exit(main())
