"""The naive baseline: the matrix the way a lab script runs it, against our run.

    .venv/bin/python benchmarks/naive.py [--phones 4] [--boot-time 0.3] [--settle 0.6]
                                         [--cases 8] [--fixed-sleep 2.0] [--off-time 3.0]
                                         [--json]

The lab script: one phone at a time; per case set the DHCP options, power the outlet off,
wait the off time (the supply must drain; our driver waits the same 3 s), power it on,
sleep a fixed time long enough for the slowest boot and provisioning, then read what the
phone requested. Our run: the same cases on the same rig through the lab runner (all lanes
at once, re-provisioning over the console, events instead of sleeps, the settle window).
Both use the same lab services; the lab start/stop is not timed in either.
By default a subset of the matrix runs (--cases 8), said in the output.
JSON keys: naive_wall_s, ours_wall_s, ratio (naive / ours).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import (
    ALL_CASES,
    BenchError,
    add_trigger,
    common_parser,
    emit,
    load_average,
    main_guard,
    make_rig,
    positive,
    run_matrix,
    select_cases,
)


def naive_run(rig: Path, cases: list[Any], *, fixed_sleep_s: float, off_time_s: float
              ) -> tuple[float, int, int]:
    """(wall, expected requests, requests seen) of the one-phone-at-a-time script."""
    from framework.errors import RigFault
    from framework.resolution import PhoneIdentity, PhoneSettings, resolve
    from framework.runner.catalogue import LAB_DNS_NAME
    from framework.runner.lane import LAB_CONFIG
    from framework.runner.options import RunOptions
    from framework.runner.session import LabSession

    with tempfile.TemporaryDirectory(prefix="hil-bench-") as reports:
        session = LabSession(RunOptions(rig_path=rig, reports_dir=Path(reports),
                                        capture=False))
        try:
            session.start()
        except RigFault as exc:
            raise BenchError(f"{rig}: rig not usable: {exc}") from None
        try:
            expected_n = seen_n = 0
            t0 = time.monotonic()
            for lane in session.lanes.values():
                if lane.broken or lane.link is None or lane.profile is None:
                    raise BenchError(f"phone {lane.spec.name} quarantined: {lane.broken}")
                power = lane.link.driver.power  # type: ignore[attr-defined]
                spec = lane.spec
                # a naive script has no way to change a phone setting: factory URL option only
                for case in [c for c in cases if c.url_option == 160]:
                    options = case.render(session.lab_ip, LAB_DNS_NAME)
                    expected = resolve(options, PhoneIdentity(spec.model, spec.mac),
                                       lane.profile, PhoneSettings(url_option=case.url_option))
                    for req in expected.requests:
                        if req.purpose == "configuration":
                            session.services.content.serve(urlsplit(req.url).path, LAB_CONFIG)
                    session.dhcp.set_options(spec.mac_colon, options)
                    since = time.time()
                    power.off()
                    time.sleep(off_time_s)  # the script's fixed waits: what we measure
                    power.on()
                    time.sleep(fixed_sleep_s)
                    mine = [r for r in session.services.log.records(since=since)
                            if (r.client_mac or "").replace(":", "").upper() == spec.mac
                            or r.client_ip == str(spec.address)]
                    files = [r for r in mine if r.protocol != "dns" and r.url]
                    expected_n += len(expected.requests)
                    seen_n += min(len(files), len(expected.requests))
            wall = time.monotonic() - t0
        finally:
            session.stop()
    return wall, expected_n, seen_n


def main() -> None:
    p = common_parser(__doc__.splitlines()[0], phones=4, boot=0.3, settle=0.6, cases=8)
    p.add_argument("--fixed-sleep", type=positive(float, "--fixed-sleep"), default=2.0,
                   help="the script's sleep after power-on, seconds (default 2.0)")
    p.add_argument("--off-time", type=positive(float, "--off-time"), default=3.0,
                   help="outlet off time, seconds (default 3.0, as our driver)")
    add_trigger(p, "our run's trigger (default check-sync)")
    args = p.parse_args()
    cases = select_cases(args.cases)
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        rig = make_rig(Path(tmp), "n", args.phones, args.boot_time)
        naive_wall, expected_n, seen_n = naive_run(
            rig, cases, fixed_sleep_s=args.fixed_sleep, off_time_s=args.off_time)
        ours = run_matrix(rig, cases, settle_s=args.settle, boot_time_s=args.boot_time,
                          trigger=args.trigger)
    ratio = naive_wall / ours.wall_s
    subset = len(cases) < len(ALL_CASES)
    result = {"benchmark": "naive", "phones": args.phones, "cases": len(cases),
              "subset": subset, "boot_time_s": args.boot_time, "settle_s": args.settle,
              "fixed_sleep_s": args.fixed_sleep, "off_time_s": args.off_time,
              "naive_wall_s": round(naive_wall, 3), "ours_wall_s": round(ours.wall_s, 3),
              "ratio": round(ratio, 3), "ours_trigger": args.trigger,
              "naive_expected_requests": expected_n, "naive_seen_requests": seen_n,
              "ours": ours.to_dict(), "load_avg_before": load_before,
              "load_avg_after": load_average()}
    table = [f"naive: {args.phones} phones x {len(cases)} cases"
             + (f" (a subset of the {len(ALL_CASES)}-case matrix)" if subset else ""),
             f"naive  {naive_wall:8.2f} s   one phone at a time, off {args.off_time:g} s + "
             f"fixed sleep {args.fixed_sleep:g} s per case; saw {seen_n}/{expected_n} "
             "expected requests",
             f"ours   {ours.wall_s:8.2f} s   all lanes at once, trigger {args.trigger}, "
             f"settle {args.settle:g} s (limit {ours.limit_s:.2f} s)",
             f"ratio  {ratio:8.2f} x  (naive / ours)",
             f"load avg  {' '.join(f'{x:.2f}' for x in load_before)} (before), "
             f"{' '.join(f'{x:.2f}' for x in result['load_avg_after'])} (after)"]
    emit(result, table, args.json)


if __name__ == "__main__":
    sys.exit(main_guard(main))
