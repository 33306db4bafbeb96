"""One run on one rig: the lab stack, one lane per phone, the record.

:class:`LabSession` composes the parts: the simulated rig's process when the rig is the
sim (:mod:`framework.runner.simproc`), the lab services stack (:mod:`framework.runner.stack`),
the phones reached and identified (:mod:`framework.runner.phones`), the record
(:mod:`framework.runner.record`), the evidence writer (:mod:`framework.runner.evidence`),
the rig probe (:mod:`framework.runner.rigprobe`) and the lanes that run the cases
(:mod:`framework.runner.lane`). Rig faults are *broken*, never *failed*.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import ipaddress
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from framework.errors import RigFault
from framework.records import CaseResult, PhoneRecord, RunRecord
from framework.resolution import ResolutionInputError, get_profile, profile_for_version
from framework.rig import Rig, load_rig
from framework.runner.catalogue import LAB_DNS_NAME, Case
from framework.runner.cycle import new_lease
from framework.runner.evidence import EvidenceWriter, safe
from framework.runner.lane import Done, Lane, LaneContext, LaneRunner
from framework.runner.options import ROOT, RunOptions
from framework.runner.phones import open_phone
from framework.runner.record import CertificationRecord
from framework.runner.rigprobe import RigProbe
from framework.runner.simproc import SimProcess
from framework.runner.stack import LabStack, StackConfig, bench_filter

log = logging.getLogger(__name__)
#: The lab CA lives here (``lab-ca/ca.pem``): phones must trust it for HTTPS. The
#: simulated rig's ``sim.ca_file`` points at it; on a real bench install it on the phones.
LAB_STATE_DIR = Path(os.environ.get("HIL_STATE_DIR", "/run/hil"))


def framework_revision() -> str:
    """The checkout's git revision (``-dirty`` when framework/, testcases/ or rigs/ have
    changes), or ``unknown`` when the framework does not run from a checkout (an installed
    wheel: its site-packages may well sit inside some other repository)."""
    if not (ROOT / ".git").exists() or not (ROOT / "framework").is_dir():
        return "unknown"
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--",
                                "framework", "testcases", "rigs"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (rev or "unknown") + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class LabSession:
    """Everything a run needs on the lab side, started once, stopped once."""

    def __init__(self, options: RunOptions, rig: Rig | None = None) -> None:
        self.options = options
        self.rig: Rig = rig if rig is not None else load_rig(options.rig_path)
        selected = list(options.phones or [p.name for p in self.rig.phones])
        unknown = [n for n in selected if n not in {p.name for p in self.rig.phones}]
        if unknown:
            raise RigFault(f"--phones: no phone named {unknown[0]!r} in {options.rig_path}")
        self.lanes: dict[str, Lane] = {p.name: Lane(p) for p in self.rig.phones
                                       if p.name in selected}
        if options.resume is not None:
            if not (options.resume / "cases.jsonl").exists():
                raise RigFault(f"--resume {options.resume}: no cases.jsonl there (not a run "
                               "directory)")
            self.run_id = options.resume.name
            self.run_dir = options.resume
        else:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
            self.run_id = options.run_id or f"{stamp}-{safe(self.rig.name)}"
            self.run_dir = options.reports_dir / self.run_id
        self.lab_ip = str(self.rig.lab.address.ip)
        sim = self.rig.sim is not None
        timings = self.rig.bench.timings
        #: ``provisioning/random_provisioning_time`` the lab serves each phone before its
        #: cases (framework.runner.settings), or None: the phone keeps its own.
        self.random_provisioning_time = _first(options.random_provisioning_time,
                                               timings.random_provisioning_time)
        self.settle_s = _first(options.settle_s, timings.settle_s, 0.6 if sim else 3.0)
        # A real phone may wait its random provisioning time (default 120 s) after the
        # lease before it asks for anything: unless the lab serves it a value, allow it.
        random_wait = 120 if self.random_provisioning_time is None else \
            self.random_provisioning_time
        self.request_timeout_s = _first(options.request_timeout_s, timings.request_timeout_s,
                                        4.0 if sim else 30.0 + random_wait)
        self.boot_timeout_s = _first(options.boot_timeout_s, timings.boot_timeout_s,
                                     90.0 if sim else 240.0)
        self.tail_s = options.tail_s if options.tail_s is not None else self.request_timeout_s
        self.sim = SimProcess(options.rig_path)
        self.stack = LabStack(self._stack_config(), on_dhcp=self._on_dhcp)
        self.evidence = EvidenceWriter(self.run_dir, self.stack)
        self.probe: RigProbe | None = None
        self.record: CertificationRecord | None = None
        self._futures: dict[tuple[str, str], Future[CaseResult]] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._stopped = False
        self.started = False
        #: Fencing (lab scale): called before every case; a reason (str) means this run
        #: lost its bench (e.g. its labgrid lock): the remaining cases are not run.
        self.guard: Callable[[], str | None] | None = None
        self._lost: str | None = None

    @property
    def trigger(self) -> str:
        """How cases start: ``--trigger``, else the rig's ``bench.trigger``, else
        check-sync (no reboot: the fastest a real phone offers)."""
        return self.options.trigger or self.rig.bench.trigger or "check-sync"

    @property
    def dhcp(self) -> Any:
        return self.stack.dhcp

    @property
    def services(self) -> Any:
        return self.stack.services

    @property
    def sim_started(self) -> bool:
        return self.sim.started

    # --- start / stop ---------------------------------------------------------------

    def _stack_config(self) -> StackConfig:
        lab = self.rig.lab
        bench_hosts = {str(getattr(p, "host", "") or "") for p in self.rig.pdus}
        for phone in self.rig.phones:
            serial = phone.console.serial
            if serial is not None and "://" in serial.url:
                bench_hosts.add(urlsplit(serial.url).hostname or "")
        return StackConfig(
            interface=lab.interface,
            address=ipaddress.IPv4Interface(f"{lab.address.ip}/{lab.network.prefixlen}"),
            pool=(str(lab.pool.start), str(lab.pool.end)),
            macs=tuple(lane.spec.mac_colon for lane in self.lanes.values()),
            fixed={lane.spec.mac_colon: str(lane.spec.address) for lane in self.lanes.values()},
            names={LAB_DNS_NAME: self.lab_ip, **{k: str(v) for k, v in lab.names.items()}},
            domain=lab.domain, lease_time=lab.lease_time, netns=lab.netns,
            state_dir=LAB_STATE_DIR, requests_jsonl=self.run_dir / "requests.jsonl",
            refuse_other_dhcp=not self.options.allow_other_dhcp,
            capture_path=self.run_dir / "lab.pcap" if self.options.capture else None,
            capture_filter=bench_filter(bench_hosts))

    def start(self) -> LabSession:
        try:
            self._start()
        except BaseException:
            self.stop(status="failed-to-start")
            raise
        self.started = True
        return self

    def _start(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._latest_link()
        if self.rig.sim is not None and self.options.manage_sim:
            self.sim.up()
        if self.sim.started:
            # A simulated lab network this run created a moment ago: nobody else can be on
            # it yet, and the passive watch covers the rest of the run.
            self.stack.config = dataclasses.replace(self.stack.config, probe_window_s=1.0)
        self.stack.start()
        self.probe = RigProbe(self.lab_ip, self.stack.dhcp, self.stack.foreign_dhcp)
        # a service that just served any phone is alive: no probe needed (ServiceProbe)
        self.stack.on_exit(self.probe.services.follow(self.stack.services.log))
        if self.options.capture:
            started = time.time()
            for lane in self.lanes.values():
                lane.capture = self.stack.capture_phone(
                    lane.spec.mac_colon, self.evidence.phone_capture_path(lane.spec.name,
                                                                          started))
        self.record = CertificationRecord(self.run_dir, self._run_meta(), self._phones_meta())
        for lane in self.lanes.values():
            self._open_lane(lane)

    def _on_dhcp(self, m: Any) -> None:
        """A phone's new lease starts a new cycle: its DNS cache is empty, so a TFTP/FTP
        request is attributed only to names it looked up after this ACK."""
        services = self.stack.services
        if new_lease(m) and services is not None and m.yiaddr not in ("", "0.0.0.0"):
            services.log.forget_names(m.yiaddr, before=m.time)

    def _latest_link(self) -> None:
        latest = self.options.reports_dir / "latest"
        with contextlib.suppress(OSError):
            if latest.is_symlink() or latest.exists():
                latest.unlink()
            latest.symlink_to(self.run_id)

    def _run_meta(self) -> RunRecord:
        return RunRecord(
            id=self.run_id, rig=self.rig.name, rig_file=str(self.options.rig_path),
            framework_revision=framework_revision(), start=time.time(), end=None,
            status="running", trigger=self.trigger, settle_s=self.settle_s,
            timings={"boot_timeout_s": self.boot_timeout_s,
                     "request_timeout_s": self.request_timeout_s, "settle_s": self.settle_s,
                     "random_provisioning_time": self.random_provisioning_time},
            profile_override=self.options.profile, host=os.uname().nodename,
            switches=self.options.switch_values() or None)

    def _phones_meta(self) -> list[PhoneRecord]:
        return [PhoneRecord(name=lane.spec.name, model=lane.spec.model, mac=lane.spec.mac,
                            address=str(lane.spec.address), firmware=lane.spec.firmware,
                            expected_firmware=lane.spec.firmware, profile=None,
                            state="pending")
                for lane in self.lanes.values()]

    def _open_lane(self, lane: Lane) -> None:
        """Reach the phone, read its identity back, choose its profile; else quarantine."""
        from framework.phone import model_matches

        assert self.record is not None
        try:
            lane.link = open_phone(self.rig, lane.spec, self.run_dir / "consoles",
                                   dhcp=self.stack.dhcp,
                                   boot_timeout_s=self.boot_timeout_s)
            identity = lane.link.identity()
            lane.firmware = identity.firmware
            surveyed = lane.spec.surveyed
            if surveyed is not None and surveyed.firmware != identity.firmware:
                _warn(f"{lane.spec.name} runs firmware {identity.firmware} but its rig section "
                      f"was surveyed with {surveyed.firmware} (run {surveyed.run}): run "
                      "`hil rig survey --write` again")
            if not model_matches(lane.spec.model, identity.model) or identity.mac != lane.spec.mac:
                raise RigFault(f"phone {lane.spec.name} reports model {identity.model} MAC "
                               f"{identity.mac}; the rig says {lane.spec.model} {lane.spec.mac}")
            lane.profile = (get_profile(self.options.profile) if self.options.profile
                            else profile_for_version(identity.firmware))
            if self.options.switches:
                lane.profile = lane.profile.with_switches(**self.options.switch_values())
            self.record.update_phone(lane.spec.name, firmware=identity.firmware,
                                     profile=lane.profile.name, state="ok")
        except (RigFault, ResolutionInputError) as exc:
            lane.broken = str(exc)
            self.record.update_phone(lane.spec.name, state="quarantined",
                                     broken_reason=lane.broken)

    def stop(self, status: str = "finished") -> None:
        """Tear everything down (idempotent): lanes, consoles, services, DHCP, the sim."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.request_timeout_s + self.settle_s + 30)
        for lane in self.lanes.values():
            if lane.link is not None:
                with contextlib.suppress(Exception):
                    lane.link.close()
        if self.record is not None:
            self.record.finish(status)
        self.stack.stop()
        self.sim.down()

    def __enter__(self) -> LabSession:
        return self.start()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.stop("interrupted" if exc_type is KeyboardInterrupt else
                  "failed" if exc_type else "finished")

    # --- scheduling -------------------------------------------------------------------

    def _context(self) -> LaneContext:
        assert self.record is not None and self.probe is not None
        return LaneContext(
            stack=self.stack, record=self.record, evidence=self.evidence, probe=self.probe,
            lab_ip=self.lab_ip, trigger=self.trigger, settle_s=self.settle_s,
            request_timeout_s=self.request_timeout_s,
            boot_timeout_s=self.boot_timeout_s, tail_s=self.tail_s,
            random_provisioning_time=self.random_provisioning_time, stop=self._stop,
            guard=self._guard_says)

    def schedule(self, items: Sequence[tuple[Case, str]], on_done: Done | None = None,
                 on_judged: Done | None = None) -> None:
        """Start one lane per phone running its cases in order; results as futures.

        A case's future (and ``on_done``) gets its final result: once the lane's next case
        has its DHCP ACK, or the lane ended, so that late requests have amended it.
        ``on_judged`` gets the result as soon as the verdict is given (provisional)."""
        assert self.record is not None
        done = {c.key: c for c in self.record.cases}
        for case, phone in items:
            if phone not in self.lanes:
                raise RigFault(f"case {case.id}: phone {phone!r} is not in this run")
            fut: Future[CaseResult] = Future()
            self._futures[(case.id, phone)] = fut
            if (case.id, phone) in done:  # resumed: finished in the earlier run
                fut.set_result(done[(case.id, phone)])
                continue
            self.lanes[phone].queue.append(case)
        ctx = self._context()
        for lane in self.lanes.values():
            if lane.queue:
                runner = LaneRunner(ctx, lane)
                t = threading.Thread(target=runner.run, args=(self._futures, on_done, on_judged),
                                     name=f"lane-{lane.spec.name}", daemon=True)
                self._threads.append(t)
                t.start()

    def result(self, case_id: str, phone: str, timeout: float | None = None) -> CaseResult:
        return self._futures[(case_id, phone)].result(timeout=timeout)

    def run_case(self, lane: Lane, case: Case) -> CaseResult:
        """One case on one phone, outside the lanes (callers that drive a phone step by
        step: exploration, the release install)."""
        return LaneRunner(self._context(), lane).run_case(case)

    def _guard_says(self) -> str | None:
        """Why this run must not drive its phones any more (``guard``), once said for good."""
        if self._lost is None and self.guard is not None:
            try:
                self._lost = self.guard()
            except Exception as exc:  # a guard that cannot tell has not proved we hold it
                self._lost = f"cannot confirm this run still holds its bench ({exc})"
            if self._lost is not None:
                log.error("stopping the lanes: %s", self._lost)
        return self._lost


def _warn(text: str) -> None:
    """A warning the operator must see: the log, and the process's own stderr (`hil run`
    captures pytest's)."""
    import sys

    log.warning("%s", text)
    err = sys.__stderr__ or sys.stderr
    err.write(f"hil run: warning: {text}\n")
    err.flush()


def _first(*values: Any) -> Any:
    """The first value that is not None (a flag, then the rig, then the default), or None."""
    return next((v for v in values if v is not None), None)
