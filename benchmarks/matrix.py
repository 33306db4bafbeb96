"""The full matrix on a simulated rig: wall time against the physical limit.

    .venv/bin/python benchmarks/matrix.py [--phones 4] [--boot-time 0.3] [--settle 0.6]
                                          [--cases N] [--trigger check-sync|web-reboot|shell-reboot|power-cycle] [--json]

JSON keys: wall_s, limit_s, ratio (wall / limit), plus the per-lane figures and load average.
The physical limit is defined in benchmarks/_bench.py and docs/PERFORMANCE.md.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import (
    BenchError,
    add_trigger,
    common_parser,
    emit,
    load_average,
    main_guard,
    make_rig,
    run_matrix,
    select_cases,
)


def main() -> None:
    p = common_parser(__doc__.splitlines()[0], phones=4, boot=0.3, settle=0.6, cases=None)
    add_trigger(p)
    p.add_argument("--no-capture", action="store_true",
                   help="per-case packet capture off (to measure what it costs)")
    args = p.parse_args()
    cases = select_cases(args.cases)
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        rig = make_rig(Path(tmp), "m", args.phones, args.boot_time)
        run = run_matrix(rig, cases, settle_s=args.settle, boot_time_s=args.boot_time,
                         trigger=args.trigger, capture=not args.no_capture,
                         measure_overheads=True)
    if len(run.lanes) != args.phones:
        raise BenchError(f"only {len(run.lanes)} of {args.phones} lanes ran")
    result = {"benchmark": "matrix", **run.to_dict(), "capture": not args.no_capture, "load_avg_before": load_before,
              "load_avg_after": load_average()}
    table = [f"matrix: {run.phones} phones x {run.cases} cases, trigger {run.trigger}, "
             f"boot {run.boot_time_s:g} s, settle {run.settle_s:g} s"
             + ("" if not args.no_capture else ", no per-case capture"),
             f"{'lane':<6} {'cases':>5} {'limit_s':>9} {'busy_s':>9} {'tail_s':>7} "
             f"{'gaps_s':>7}  triggers"]
    for ln in run.lanes:
        table.append(f"{ln.phone:<6} {ln.cases:>5} {ln.limit_s:>9.2f} {ln.busy_s:>9.2f} "
                     f"{ln.tail_s:>7.2f} {ln.gaps_s:>7.2f}  "
                     + ", ".join(f"{k}={v}" for k, v in sorted(ln.triggers.items()))
                     + f"  (longest tail {ln.worst_tail[1]:.2f} s: {ln.worst_tail[0]})")
    table += [f"overhead  {k} {v * 1000:.0f} ms per call" for k, v in run.overheads.items()]
    table += [f"wall      {run.wall_s:8.2f} s   (lab setup {run.setup_s:.1f} s, "
              f"teardown {run.teardown_s:.1f} s, not included)",
              f"limit     {run.limit_s:8.2f} s   (busiest lane: phone time + settle per case)",
              f"ratio     {run.ratio:8.3f}     (target <= 1.10)",
              "verdicts  " + ", ".join(f"{k} {v}" for k, v in sorted(run.verdicts.items())),
              f"load avg  {' '.join(f'{x:.2f}' for x in load_before)} (before), "
              f"{' '.join(f'{x:.2f}' for x in result['load_avg_after'])} (after)"]
    emit(result, table, args.json)


if __name__ == "__main__":
    sys.exit(main_guard(main))
