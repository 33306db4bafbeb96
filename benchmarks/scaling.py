"""Scaling: the matrix on 1, 2, 4, 8 phones, each phone its own lane, all lanes at once.

    .venv/bin/python benchmarks/scaling.py [--phones-list 1,2,4,8] [--boot-time 0.3]
                                           [--settle 0.6] [--cases 12] [--json]

Every phone runs the same cases (a certification runs the matrix on every phone), so P
phones do P times the work of one. The speed-up over one phone is the throughput ratio
``P * wall(1) / wall(P)``: 8 lanes that run perfectly in parallel give 8.
JSON keys: speedup (phones -> speed-up), runs (one matrix run per size, with wall_s,
limit_s, ratio).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import (
    BenchError,
    add_trigger,
    check_phones,
    common_parser,
    emit,
    load_average,
    main_guard,
    make_rig,
    run_matrix,
    select_cases,
)


def phones_list(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--phones-list: {text!r} is not a comma-separated "
                                         "list of integers") from None
    if len(set(sizes)) > 12:
        raise argparse.ArgumentTypeError(f"{text!r}: at most 12 sizes")
    if not sizes or 1 not in sizes:
        raise argparse.ArgumentTypeError(f"--phones-list: {text!r} must include 1 (the "
                                         "baseline)")
    return sorted(set(sizes))


def main() -> None:
    p = common_parser(__doc__.splitlines()[0], phones=8, boot=0.3, settle=0.6, cases=12)
    p.add_argument("--phones-list", type=phones_list, default=[1, 2, 4, 8],
                   help="phone counts to run (must include 1; default 1,2,4,8)")
    add_trigger(p)
    args = p.parse_args()
    for n in args.phones_list:
        check_phones(n)
    cases = select_cases(args.cases)
    load_before = load_average()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        for i, n in enumerate(args.phones_list):
            rig = make_rig(Path(tmp), "abcdefghijkl"[i], n, args.boot_time)
            runs[n] = run_matrix(rig, cases, settle_s=args.settle,
                                 boot_time_s=args.boot_time, trigger=args.trigger)
            if len(runs[n].lanes) != n:
                raise BenchError(f"{n} phones: only {len(runs[n].lanes)} lanes ran")
    base = runs[1].wall_s
    speedup = {str(n): round(n * base / r.wall_s, 3) for n, r in runs.items()}
    result = {"benchmark": "scaling", "cases": len(cases), "settle_s": args.settle,
              "boot_time_s": args.boot_time, "trigger": args.trigger, "speedup": speedup,
              "runs": {str(n): r.to_dict() for n, r in runs.items()},
              "load_avg_before": load_before, "load_avg_after": load_average()}
    table = [f"scaling: {len(cases)} cases per phone, trigger {args.trigger}, "
             f"settle {args.settle:g} s",
             f"{'phones':>6} {'wall_s':>8} {'limit_s':>8} {'ratio':>6} {'speedup':>8}"]
    for n, r in runs.items():
        table.append(f"{n:>6} {r.wall_s:>8.2f} {r.limit_s:>8.2f} {r.ratio:>6.3f} "
                     f"{speedup[str(n)]:>8.2f}")
    table += ["speedup = phones x wall(1) / wall(phones)   (target: 8 phones >= 7)",
              f"load avg  {' '.join(f'{x:.2f}' for x in load_before)} (before), "
              f"{' '.join(f'{x:.2f}' for x in result['load_avg_after'])} (after)"]
    emit(result, table, args.json)


if __name__ == "__main__":
    sys.exit(main_guard(main))
