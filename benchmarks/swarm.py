"""Swarm: 64 virtual phones powered on at once; every lease and request served and recorded.

    .venv/bin/python benchmarks/swarm.py [--phones 64] [--boot-time 0.3] [--settle 0.6]
                                         [--capture] [--json]

Up to 200 phones: past the sim rig writer's 64 the rig is extended here with the same
scheme (ph65.., fixed addresses 192.0.2.75.., the DHCP pool moved above the last phone);
past 99 the sim must serve the consoles elsewhere (``framework.sim.config.console_ports``).

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
phone provisioned), verdicts, broken (phone -> reason), probes (the service probes the
runner put on the wire, per protocol: one in flight per service, shared by the lanes).
"""

from __future__ import annotations

import copy
import sys
import tempfile
import time
from collections.abc import Callable
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
MAX_SWARM = 200  # fixed addresses 192.0.2.11..210, a pool above them, .250/.251 infra


def make_swarm_rig(directory: Path, tag: str, phones: int, boot_time_s: float) -> Path:
    """A sim rig of ``phones`` phones; past the rig writer's limit, extended alike."""
    import yaml

    from framework.sim.rigfile import MAX_PHONES, sim_rig_document

    if phones <= MAX_PHONES:
        return make_rig(directory, tag, phones, boot_time_s)
    if phones > MAX_SWARM:
        raise BenchError(f"--phones {phones}: the swarm has 1..{MAX_SWARM} phones")
    from framework.sim import config as sim_config

    # phone i's (raw TCP, RFC 2217) console ports on the sim's terminal server
    console_ports: Callable[[int], tuple[int, int]] | None = getattr(
        sim_config, "console_ports", None)
    if console_ports is None:
        if phones > 99:
            raise BenchError(f"--phones {phones}: the sim serves consoles of phones 1..99 "
                             "only (raw TCP 7000+i meets RFC 2217 7100+i past 99)")

        def console_ports(i: int) -> tuple[int, int]:
            return 7000 + i, 7100 + i
    doc = sim_rig_document(prefix=prefix(tag), phones=MAX_PHONES, boot_time_s=boot_time_s)
    template, models = doc["phones"][0], sorted({e["model"] for e in doc["phones"]})
    for i in range(MAX_PHONES + 1, phones + 1):
        entry = copy.deepcopy(template)
        entry.update(name=f"ph{i}", model=models[i % len(models)],
                     mac=f"00:90:8F:00:{i >> 8:02X}:{i & 0xFF:02X}", address=f"192.0.2.{10 + i}",
                     power={"pdu": "pdu1", "outlet": i})
        entry["console"]["serial"]["url"] = f"socket://192.0.2.251:{console_ports(i)[0]}"
        doc["phones"].append(entry)
        doc["sim"]["phones"][f"ph{i}"] = {"deviations": []}
    doc["pdus"][0]["outlets"] = phones
    doc["lab"]["pool"] = {"start": f"192.0.2.{10 + phones + 2}", "end": "192.0.2.249"}
    path = directory / f"rig-{tag}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


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


def mine(spec: Any, record: Any) -> bool:
    """Whether a request-log record is the phone's (by MAC, else by its address)."""
    return bool((record.client_mac or "").replace(":", "").upper() == spec.mac
                or record.client_ip == str(spec.address))


def sim_peak_rss_mib(sim_prefix: str) -> float:
    from framework.sim.state import read_state

    state = read_state(sim_prefix)
    if not state or not isinstance(state.get("pid"), int):
        raise BenchError(f"no sim lab state for {sim_prefix} (is it up?)")
    return sum(proc_peak_rss_mib(p) or 0.0 for p in descendants(state["pid"]))


def swarm(rig: Path, sim_prefix: str, settle_s: float, capture: bool) -> dict[str, Any]:
    from framework.errors import RigFault
    from framework.runner.options import RunOptions
    from framework.runner.session import LabSession

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
            failed: dict[str, str] = {}
            for entry in results:
                spec = session.lanes[entry.phone].spec
                acks = [m for m in session.dhcp.transcript(spec.mac_colon)
                        if m.direction == "sent" and m.message_type == "ACK"
                        and m.time >= entry.start]
                lost_leases += 0 if acks else 1
                expected = len((entry.expected or {}).get("requests") or []) or 2
                files = [o for o in entry.observed if o.protocol != "dns"]
                seen = min(len(files), expected)
                expected_total += expected
                seen_total += seen
                lost_requests += expected - seen
                last = max([last] + [float(o.time) for o in files])
                verdicts[entry.verdict] = verdicts.get(entry.verdict, 0) + 1
                if entry.verdict in ("broken", "failed"):
                    # the reason, and what the lab's log holds of the phone since the trigger
                    # (did the request reach our server at all?)
                    seen_log = [f"{r.protocol} {r.method} {r.path} {r.outcome} "
                                f"+{r.time - entry.start:.1f}s"
                                for r in session.services.log.records(since=entry.start)
                                if mine(spec, r)]
                    (broken if entry.verdict == "broken" else failed)[entry.phone] = (
                        f"{entry.reason}  [log: {'; '.join(seen_log) or 'nothing'}]")
            # Late, not lost: file requests that reached the log after their case was judged
            # (the runner waits request_timeout_s for them).
            late = 0
            for entry in results:
                spec = session.lanes[entry.phone].spec
                late += sum(1 for r in session.services.log.records(since=entry.end)
                            if mine(spec, r) and r.protocol != "dns" and r.url)
            sim_rss = sim_peak_rss_mib(sim_prefix)
            fw_rss = self_peak_rss_mib()
            probes = session.probe.services.sent() if session.probe is not None else {}
        finally:
            session.stop()
    return {"phones": len(session.lanes), "quarantined": quarantined,
            "lost_leases": lost_leases + len(quarantined),
            "lost_requests": lost_requests + 2 * len(quarantined),
            "expected_requests": expected_total + 2 * len(quarantined),
            "recorded_requests": seen_total, "late_requests": late,
            "verdicts": verdicts, "broken": broken, "failed": failed, "probes": probes,
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
        rig = make_swarm_rig(Path(tmp), "w", args.phones, args.boot_time)
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
             *[f"{v.lower():<9} {k}: {r}" for v in ("broken", "failed")
               for k, r in sorted(out[v].items())],
             "probes    " + (", ".join(f"{k} {n}" for k, n in sorted(out["probes"].items()))
                            or "-") + " (service probes on the wire, all lanes)",
             f"load avg  {' '.join(f'{x:.2f}' for x in load_before)} (before), "
             f"{' '.join(f'{x:.2f}' for x in result['load_avg_after'])} (after)"]
    emit(result, table, args.json)


if __name__ == "__main__":
    sys.exit(main_guard(main))
