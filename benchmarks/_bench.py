"""Shared pieces of the benchmark scripts: sim rigs, one timed matrix run, the physical limit.

Definitions (docs/PERFORMANCE.md):

* a case's **start** is the entry's ``start``: the moment the runner fires the trigger
  (``session.py`` takes ``time.time()`` right before ``link.trigger(...)``), after the DHCP
  options were set; a power-cycle's boot therefore counts as the phone's own time;
* a case's **phone time** is from that start to the phone's last act on the wire in the
  case: its last recorded request (``observed``), or, when it requested nothing, the last
  DHCP ACK it got (from the DHCP transcript); plus the **settle window**, the one
  deliberate wait;
* a lane's **physical limit** is the sum of its cases' phone times; the run's limit is the
  busiest lane's (the largest sum);
* **wall** is from ``session.schedule(...)`` to the last result (lab start/stop excluded,
  reported apart as ``setup_s``/``teardown_s``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python benchmarks/NAME.py` from a clean checkout
    sys.path.insert(0, str(ROOT))

from framework.records import CaseResult  # noqa: E402
from framework.rig.interfaces import TRIGGERS, Trigger  # noqa: E402
from framework.runner.catalogue import ALL_CASES, Case  # noqa: E402

PREFIX_BASE = "hilt-b"


class BenchError(Exception):
    """A benchmark cannot run (bad option, rig did not start): one line, exit 2."""


def prefix(tag: str) -> str:
    """A namespace prefix of our own (never ``hil``): hilt-b + pid % 1000 + one letter."""
    if len(tag) != 1 or not tag.isalpha():
        raise ValueError(f"prefix tag {tag!r}: one letter")
    return f"{PREFIX_BASE}{os.getpid() % 1000}{tag}"


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def positive(kind: type, what: str) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    return parse


class OneLineParser(argparse.ArgumentParser):
    """Bad options: one line naming the option, exit 2 (no usage dump, no traceback)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")


def common_parser(description: str, *, phones: int, boot: float, settle: float,
                  cases: int | None) -> argparse.ArgumentParser:
    p = OneLineParser(description=description)
    p.add_argument("--phones", type=positive(int, "--phones"), default=phones,
                   help=f"virtual phones (1..64, default {phones})")
    p.add_argument("--boot-time", type=positive(float, "--boot-time"), default=boot,
                   help=f"sim power-on to DHCP DISCOVER, seconds (default {boot})")
    p.add_argument("--settle", type=positive(float, "--settle"), default=settle,
                   help=f"settle window, seconds (default {settle})")
    p.add_argument("--cases", type=positive(int, "--cases"), default=cases,
                   help="first N cases of the catalogue (default: "
                   f"{'all ' + str(len(ALL_CASES)) if cases is None else cases})")
    p.add_argument("--json", action="store_true", help="print one JSON object instead")
    return p


def add_trigger(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--trigger``, with the choices of the runner's own option (RunOptions.trigger)."""
    p.add_argument("--trigger", choices=TRIGGERS, default="check-sync", help=help)


def select_cases(n: int | None) -> list[Case]:
    """The first ``n`` cases, taken evenly across the catalogue so every group is in."""
    cases = list(ALL_CASES)
    if n is None or n >= len(cases):
        return cases
    step = len(cases) / n
    return [cases[int(i * step)] for i in range(n)]


def check_phones(n: int) -> None:
    from framework.sim.rigfile import MAX_PHONES

    if not 1 <= n <= MAX_PHONES:
        raise BenchError(f"--phones {n}: a simulated rig has 1..{MAX_PHONES} phones")


def make_rig(directory: Path, tag: str, phones: int, boot_time_s: float) -> Path:
    from framework.sim.rigfile import write_sim_rig

    check_phones(phones)
    return write_sim_rig(directory / f"rig-{tag}.yaml", prefix=prefix(tag), phones=phones,
                         boot_time_s=boot_time_s)


@dataclass
class LaneTiming:
    phone: str
    cases: int = 0
    limit_s: float = 0.0
    busy_s: float = 0.0  # sum of end - start: what the runner actually spent per case
    #: sum over cases of end - (last phone act + settle): judging, health check, evidence
    tail_s: float = 0.0
    #: sum of the gaps between one case's end and the next one's start (case set-up:
    #: resolution, content, DHCP options; the record's JSONL line)
    gaps_s: float = 0.0
    triggers: dict[str, int] = field(default_factory=dict)
    #: the case with the longest tail, and that tail (where to look first)
    worst_tail: tuple[str, float] = ("", 0.0)


@dataclass
class MatrixRun:
    phones: int
    cases: int
    boot_time_s: float
    settle_s: float
    trigger: str
    wall_s: float
    limit_s: float
    setup_s: float
    teardown_s: float
    verdicts: dict[str, int]
    lanes: list[LaneTiming]
    peak_rss_mib: float
    #: what did not pass, with the reason (a benchmark's verdicts must be explainable)
    not_passed: list[dict[str, str]] = field(default_factory=list)
    #: seconds per call, median over the lanes, of the runner's per-case steps that are
    #: not the phone's time (measured after the run, when asked)
    overheads: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.wall_s / self.limit_s if self.limit_s > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {"phones": self.phones, "cases": self.cases, "boot_time_s": self.boot_time_s,
                "settle_s": self.settle_s, "trigger": self.trigger,
                "wall_s": round(self.wall_s, 3), "limit_s": round(self.limit_s, 3),
                "ratio": round(self.ratio, 4), "setup_s": round(self.setup_s, 2),
                "teardown_s": round(self.teardown_s, 2), "verdicts": self.verdicts,
                "lanes": [{"phone": ln.phone, "cases": ln.cases,
                           "limit_s": round(ln.limit_s, 3), "busy_s": round(ln.busy_s, 3),
                           "tail_s": round(ln.tail_s, 3), "gaps_s": round(ln.gaps_s, 3),
                            "worst_tail": list(ln.worst_tail),
                           "triggers": ln.triggers} for ln in self.lanes],
                "peak_rss_mib": round(self.peak_rss_mib, 1), "not_passed": self.not_passed,
                **({"overheads_s": self.overheads} if self.overheads else {})}


def phone_time(entry: CaseResult, acks: Sequence[float]) -> float:
    """From the trigger to the phone's last act on the wire in this case (see module doc)."""
    start, end = float(entry.start), float(entry.end)
    times = [float(o.time) for o in entry.observed]
    if not times:
        times = [t for t in acks if start <= t <= end]
    return max(times) - start if times else 0.0


def ack_times(session: Any, mac_colon: str) -> list[float]:
    return [m.time for m in session.dhcp.transcript(mac_colon)
            if m.direction == "sent" and m.message_type == "ACK"]


def run_matrix(rig: Path, cases: Sequence[Case], *, settle_s: float, boot_time_s: float,
               trigger: Trigger = "check-sync", capture: bool = True,
               timeout_s: float = 1800.0, measure_overheads: bool = False) -> MatrixRun:
    """Every case on every phone of ``rig``, all lanes at once; timed (see module doc)."""
    from framework.errors import RigFault
    from framework.runner.options import RunOptions
    from framework.runner.session import LabSession

    with tempfile.TemporaryDirectory(prefix="hil-bench-") as reports:
        t0 = time.monotonic()
        session = LabSession(RunOptions(rig_path=rig, reports_dir=Path(reports),
                                        settle_s=settle_s, trigger=trigger, capture=capture))
        try:
            session.start()
        except RigFault as exc:
            raise BenchError(f"{rig}: rig not usable: {exc}") from None
        try:
            setup = time.monotonic() - t0
            broken = {n: ln.broken for n, ln in session.lanes.items() if ln.broken}
            if broken:
                name, why = next(iter(broken.items()))
                raise BenchError(f"{rig}: phone {name} quarantined at start: {why}")
            items = [(c, name) for name in session.lanes for c in cases]
            t1 = time.monotonic()
            session.schedule(items)
            results = [session.result(c.id, name, timeout=timeout_s) for c, name in items]
            wall = time.monotonic() - t1
            lanes: dict[str, LaneTiming] = {}
            verdicts: dict[str, int] = {}
            previous_end: dict[str, float] = {}
            not_passed: list[dict[str, str]] = []
            for entry in sorted(results, key=lambda e: float(e.start)):
                name = entry.phone
                lane = lanes.setdefault(name, LaneTiming(name))
                acks = ack_times(session, session.lanes[name].spec.mac_colon)
                lane.cases += 1
                own = phone_time(entry, acks)
                lane.limit_s += own + settle_s
                lane.busy_s += float(entry.end) - float(entry.start)
                tail = float(entry.end) - float(entry.start) - own - settle_s
                lane.tail_s += tail
                if tail > lane.worst_tail[1]:
                    lane.worst_tail = (entry.id, round(tail, 3))
                if name in previous_end:
                    lane.gaps_s += float(entry.start) - previous_end[name]
                previous_end[name] = float(entry.end)
                path = str(entry.trigger or "none")
                lane.triggers[path] = lane.triggers.get(path, 0) + 1
                verdicts[entry.verdict] = verdicts.get(entry.verdict, 0) + 1
                if entry.verdict != "passed":
                    not_passed.append({"id": entry.id, "phone": name,
                                       "verdict": entry.verdict, "reason": entry.reason})
            overheads = runner_overheads(session) if measure_overheads else {}
        finally:
            t2 = time.monotonic()
            session.stop()
            teardown = time.monotonic() - t2
    return MatrixRun(phones=len(lanes), cases=len(cases), boot_time_s=boot_time_s,
                     settle_s=settle_s, trigger=trigger, wall_s=wall,
                     limit_s=max(ln.limit_s for ln in lanes.values()), setup_s=setup,
                     teardown_s=teardown, verdicts=verdicts, lanes=list(lanes.values()),
                     peak_rss_mib=self_peak_rss_mib(), overheads=overheads,
                     not_passed=not_passed)


def runner_overheads(session: Any, repeat: int = 5) -> dict[str, float]:
    """Median cost of the runner's per-case steps that are not the phone's own time:
    the rig health check after every case (our services on the wire, the phone's PDU
    outlet and console) and slicing the case's pcap out of the phone's run capture."""
    import statistics

    def timed(fn: Any) -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    lane = next(iter(session.lanes.values()))
    out = {"services_check": statistics.median(
               timed(session.probe.services_fault) for _ in range(repeat)),
           "phone_health": statistics.median(
               timed(lane.link.health) for _ in range(repeat))}
    if session.options.capture:
        # the run's own evidence writer, as a case does (the benchmark's reports directory
        # is temporary): evidence/<phone>/bench-overhead/traffic.pcap
        def capture_slice() -> None:
            cap = session.evidence.traffic_slice(lane.spec, lane.capture, "bench-overhead",
                                                 time.time() - 1.0)
            if cap is not None:
                cap.stop()
        out["capture_slice"] = statistics.median(
            timed(capture_slice) for _ in range(repeat))
    return {k: round(v, 4) for k, v in out.items()}


def self_peak_rss_mib() -> float:
    """Peak RSS of this process (the framework side), MiB (ru_maxrss is KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def children_peak_rss_mib() -> float:
    """Peak RSS of the largest waited-for child (``hil sim up`` etc.), MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def proc_peak_rss_mib(pid: int) -> float | None:
    """VmHWM of a running process, MiB (None when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def emit(result: dict[str, Any], table: list[str], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result, sort_keys=True))
    else:
        print("\n".join(table))


def main_guard(fn: Any) -> int:
    """Run ``fn``; a BenchError is one line on stderr and exit 2, never a traceback."""
    import logging

    # The lab's per-request warnings (not-found firmware images, health probes) are
    # expected in a matrix run; the figures are the output.
    logging.basicConfig(level=logging.CRITICAL)
    try:
        fn()
    except BenchError as exc:
        print(f"{Path(sys.argv[0]).name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{Path(sys.argv[0]).name}: interrupted", file=sys.stderr)
        return 130
    return 0
