"""Swarm: 64 virtual phones powered on at once; every lease and request served and recorded.

    .venv/bin/python benchmarks/swarm.py [--phones 64] [--boot-time 0.3] [--settle 0.6]
                                         [--capture] [--json]

One case per phone, Option 66 = the lab IP (catalogue case t10-2/r2-host-ip: the phone
must fetch its firmware image and its configuration over TFTP, 2 requests), all lanes at
once with the power-cycle trigger, so all outlets go off and on together. Counted: the
DHCP ACKs the lab server sent each phone after the power-cycle (from its transcript), the
expected file requests (the resolution core) against those in the request log; a phone
without a lease or a missing request is lost. Peak memory: this process (the framework:
DHCP, services, 64 lanes; getrusage) and the sim lab process with its descendants
(VmHWM from /proc, pid from /run/hil/sim-PREFIX.json). Per-case packet capture is off
unless --capture (64 tcpdump processes are evidence, not the lab).
JSON keys: phones, lost_requests, peak_rss_mib, wall_s (power-cycle to the last
phone provisioned).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import (
    ALL_CASES,
    BenchError,
    common_parser,
    emit,
    load_average,
    main_guard,
    make_rig,
    prefix,
    proc_peak_rss_mib,
    self_peak_rss_mib,
)

CASE_ID = "t10-2/r2-host-ip"


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc/*/stat)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            ppid = int(text.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def sim_peak_rss_mib(sim_prefix: str) -> float:
    from framework.sim.state import read_state

    state = read_state(sim_prefix)
    if not state or not isinstance(state.get("pid"), int):
        raise BenchError(f"no sim lab state for {sim_prefix} (is it up?)")
    return sum(proc_peak_rss_mib(p) or 0.0 for p in descendants(state["pid"]))


def swarm(rig: Path, sim_prefix: str, settle_s: float, capture: bool) -> dict[str, Any]:
    from framework.lab.phones import RigFault
    from framework.lab.session import LabSession, RunOptions

    case = next(c for c in ALL_CASES if c.id == CASE_ID)
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as reports:
        session = LabSession(RunOptions(rig_path=rig, reports_dir=Path(reports),
                                        settle_s=settle_s, trigger="power-cycle",
                                        capture=capture))
        try:
            session.start()
        except RigFault as exc:
            raise BenchError(f"{rig}: rig not usable: {exc}") from None
        try:
            quarantined = [n for n, ln in session.lanes.items() if ln.broken]
            names = [n for n in session.lanes if n not in quarantined]
            t0, m0 = time.time(), time.monotonic()
            session.schedule([(case, n) for n in names])
            results = [session.result(CASE_ID, n, timeout=600) for n in names]
            wall_runner = time.monotonic() - m0
            lost_leases = lost_requests = expected_total = seen_total = 0
            last = t0
            verdicts: dict[str, int] = {}
            broken: dict[str, str] = {}
            for entry in results:
                spec = session.lanes[entry["phone"]].spec
                acks = [m for m in session.dhcp.transcript(spec.mac_colon)
                        if m.direction == "sent" and m.message_type == "ACK"
                        and m.time >= entry["start"]]
                lost_leases += 0 if acks else 1
                expected = len((entry.get("expected") or {}).get("requests") or []) or 2
                files = [o for o in entry["observed"] if o["protocol"] != "dns"]
                seen = min(len(files), expected)
                expected_total += expected
                seen_total += seen
                lost_requests += expected - seen
                last = max([last] + [float(o["time"]) for o in files])
                verdicts[entry["verdict"]] = verdicts.get(entry["verdict"], 0) + 1
                if entry["verdict"] == "broken":
                    broken[entry["phone"]] = entry["reason"]
            # Late, not lost: file requests that reached the log after their case was judged
            # (the runner waits request_timeout_s for them).
            late = 0
            for entry in results:
                spec = session.lanes[entry["phone"]].spec
                late += sum(1 for r in session.services.log.records(since=entry["end"])
                            if ((r.client_mac or "").replace(":", "").upper() == spec.mac
                                or r.client_ip == str(spec.address))
                            and r.protocol != "dns" and r.url)
            sim_rss = sim_peak_rss_mib(sim_prefix)
            fw_rss = self_peak_rss_mib()
        finally:
            session.stop()
    return {"phones": len(session.lanes), "quarantined": quarantined,
            "lost_leases": lost_leases + len(quarantined),
            "lost_requests": lost_requests + 2 * len(quarantined),
            "expected_requests": expected_total + 2 * len(quarantined),
            "recorded_requests": seen_total, "late_requests": late,
            "verdicts": verdicts, "broken": broken,
            "wall_s": round(last - t0, 3), "runner_wall_s": round(wall_runner, 3),
            "peak_rss_mib": {"framework": round(fw_rss, 1), "sim_lab": round(sim_rss, 1),
                             "total": round(fw_rss + sim_rss, 1)}}


def main() -> None:
    p = common_parser(__doc__.splitlines()[0], phones=64, boot=0.3, settle=0.6, cases=None)
    p.add_argument("--capture", action="store_true", help="per-case packet capture on")
    args = p.parse_args()
    if args.cases is not None:
        raise BenchError("--cases: the swarm runs one case per phone (Option 66 = lab IP)")
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="hil-bench-") as tmp:
        rig = make_rig(Path(tmp), "w", args.phones, args.boot_time)
        out = swarm(rig, prefix("w"), args.settle, args.capture)
    result = {"benchmark": "swarm", "case": CASE_ID, "boot_time_s": args.boot_time,
              "settle_s": args.settle, "capture": args.capture, **out,
              "load_avg_before": load_before, "load_avg_after": load_average()}
    rss = out["peak_rss_mib"]
    table = [f"swarm: {out['phones']} phones powered on at once, case {CASE_ID}",
             f"leases    {out['phones'] - out['lost_leases']}/{out['phones']} "
             f"(lost {out['lost_leases']})",
             f"requests  {out['recorded_requests']}/{out['expected_requests']} recorded "
             f"(lost {out['lost_requests']}; {out['late_requests']} more arrived after "
             "their case was judged)",
             f"wall      {out['wall_s']:8.2f} s  power-cycle to the last phone's last request",
             f"peak RSS  framework {rss['framework']:.0f} MiB + sim lab {rss['sim_lab']:.0f} "
             f"MiB = {rss['total']:.0f} MiB (target < 1024)",
             "verdicts  " + ", ".join(f"{k} {v}" for k, v in sorted(out["verdicts"].items())),
             *[f"broken    {k}: {v}" for k, v in sorted(out["broken"].items())],
             f"load avg  {' '.join(f'{x:.2f}' for x in load_before)} (before), "
             f"{' '.join(f'{x:.2f}' for x in result['load_avg_after'])} (after)"]
    emit(result, table, args.json)


if __name__ == "__main__":
    sys.exit(main_guard(main))
