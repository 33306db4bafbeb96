"""One run on one rig: start the lab side, run every case in per-phone lanes, record verdicts.

The loop per case (ARCHITECTURE.md): the core says what the phone must request; the DHCP
server hands the phone exactly the case's options; the phone is re-provisioned (console)
or power-cycled (PDU); the provisioning services record every request; the verdict
compares the two, with the evidence attached. Rig faults are *broken*, never *failed*.

Waits are events: the DHCP ACK to that MAC, the phone's requests in the request log, and
one deliberate wait, the settle window (listening for anything more after the last
request).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from framework.netns import NamespaceError, Netns
from framework.resolution import (
    ExpectedProvisioning,
    PhoneIdentity,
    PhoneSettings,
    Profile,
    ResolutionInputError,
    get_profile,
    profile_for_version,
    resolve,
)
from framework.rig import PhoneSpec, Rig, load_rig
from framework.runner.catalogue import LAB_DNS_NAME, Case
from framework.runner.cycle import (
    CaseListener,
    CaseWindow,
    amend_late,
    judge_cycles,
    new_lease,
    observed,
    offset_dicts,
    phone_matcher,
)
from framework.runner.options import RunOptions
from framework.runner.phones import PhoneLink, RigFault, open_phone
from framework.runner.probe import ServiceProbe
from framework.runner.record import CertificationRecord, evidence_entry
from framework.runner.verdict import Judgement, Observed, Verdict

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]
#: The lab CA lives here (``lab-ca/ca.pem``): phones must trust it for HTTPS. The
#: simulated rig's ``sim.ca_file`` points at it; on a real bench install it on the phones.
#: What every expected configuration URL serves (the same bytes for every lane, so lanes
#: sharing a path never race); firmware URLs answer not-found, so no phone is ever flashed
#: by a matrix run.
LAB_CONFIG = b"# 400HD provisioning lab: configuration served to the phone under test\n"
LAB_STATE_DIR = Path(os.environ.get("HIL_STATE_DIR", "/run/hil"))


@dataclass
class Lane:
    """One phone's lane: its driver, its profile and, once broken, why (quarantine)."""

    spec: PhoneSpec
    link: PhoneLink | None = None
    profile: Profile | None = None
    firmware: str | None = None
    url_option: int = 160
    broken: str | None = None
    queue: list[Case] = field(default_factory=list)
    capture: Any = None  # the phone's capture for the whole run (a PcapTail to slice)
    #: The last case judged, until its late requests can no longer come (the next ACK).
    pending: PendingCase | None = None


@dataclass
class PendingCase:
    """A judged case whose phone may still make late requests; ``on_final`` receives the
    entry (amended or not) when the lane's next case has its ACK, or the lane ends."""

    entry: dict[str, Any]
    expected: ExpectedProvisioning
    window: CaseWindow
    listener: CaseListener
    on_final: Callable[[dict[str, Any]], None] | None = None


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text)


def framework_revision() -> str:
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
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        if options.resume is not None:
            if not (options.resume / "cases.jsonl").exists():
                raise RigFault(f"--resume {options.resume}: no cases.jsonl there (not a run "
                               "directory)")
            self.run_id = options.resume.name
            self.run_dir = options.resume
        else:
            self.run_id = options.run_id or f"{stamp}-{_safe(self.rig.name)}"
            self.run_dir = options.reports_dir / self.run_id
        self.lab_ip = str(self.rig.lab.address.ip)
        self._rig_macs = {p.mac for p in self.rig.phones}
        self.settle_s = options.settle_s if options.settle_s is not None else (
            0.6 if self.rig.sim is not None else 3.0)
        self.request_timeout_s = options.request_timeout_s if options.request_timeout_s \
            is not None else (4.0 if self.rig.sim is not None else 30.0)
        self.tail_s = options.tail_s if options.tail_s is not None else self.request_timeout_s
        self._stack = contextlib.ExitStack()
        self._futures: dict[tuple[str, str], Future[dict[str, Any]]] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._stopped = False
        self.record: CertificationRecord | None = None
        self.started = False
        self.sim_started = False
        self.dhcp: Any = None
        self.services: Any = None
        self.capture: Any = None
        self.probe = ServiceProbe(self.lab_ip)
        self.foreign_dhcp: Any = None  # a ForeignDhcpWatch once started
        #: Fencing (lab scale): called before every case; a reason (str) means this run
        #: lost its bench (e.g. its labgrid lock): the remaining cases are not run.
        self.guard: Callable[[], str | None] | None = None
        self._lost: str | None = None

    # --- start / stop ---------------------------------------------------------------

    def start(self) -> LabSession:
        try:
            self._start()
        except BaseException:
            self.stop(status="failed-to-start")
            raise
        self.started = True
        return self

    def _start(self) -> None:
        from framework.dhcp.server import DhcpServer, DhcpServerError
        from framework.services import ContentStore, ProvisioningServices, RequestLog, Zone

        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._latest_link()
        if self.rig.sim is not None and self.options.manage_sim:
            self._sim_up()
        if self.rig.lab.netns:
            try:
                self._stack.enter_context(Netns(self.rig.lab.netns).entered())
            except NamespaceError as exc:
                raise RigFault(f"lab network: {exc}") from None
        self._check_interface()
        if not self.options.allow_other_dhcp:
            self._refuse_other_dhcp()
        lab = self.rig.lab
        macs = [lane.spec.mac_colon for lane in self.lanes.values()]
        self.dhcp = DhcpServer(
            lab.interface, self.lab_ip, netmask=str(lab.network.netmask),
            pool=(str(lab.pool.start), str(lab.pool.end)),
            fixed={lane.spec.mac_colon: str(lane.spec.address) for lane in self.lanes.values()},
            allowlist=macs, router=None, dns=[self.lab_ip], domain=lab.domain,
            lease_time=lab.lease_time)
        try:
            self.dhcp.start()
        except (OSError, DhcpServerError) as exc:
            raise RigFault(f"DHCP server cannot start on {lab.interface}: {exc}") from None
        self._stack.callback(self.dhcp.stop)
        self._stack.callback(self.dhcp.subscribe(self._on_dhcp))
        self._watch_foreign_dhcp()
        self.services = ProvisioningServices(
            self.lab_ip, state_dir=LAB_STATE_DIR,
            log=RequestLog(jsonl=self.run_dir / "requests.jsonl",
                           mac_resolver=self.dhcp.mac_for_ip),
            content=ContentStore(client_filter=self._is_rig_phone),
            zone=Zone({LAB_DNS_NAME: self.lab_ip, **{k: str(v) for k, v in lab.names.items()}}))
        try:
            self.services.start()
        except (OSError, RuntimeError) as exc:
            raise RigFault(f"provisioning services cannot start on {self.lab_ip}: {exc}") \
                from None
        self._stack.callback(self.services.stop)
        # a service that just served any phone is alive: no probe needed (ServiceProbe)
        self._stack.callback(self.probe.follow(self.services.log))
        if self.options.capture:
            self._start_capture()
            for lane in self.lanes.values():
                lane.capture = self._lane_capture(lane.spec)
        self.record = CertificationRecord(self.run_dir, self._run_meta(), self._phones_meta())
        for lane in self.lanes.values():
            self._open_lane(lane)

    def _watch_foreign_dhcp(self) -> None:
        """Safety and truth: a DHCP server other than ours answering on the lab interface
        mid-run (plugged in, or slower than the start-up probe) breaks the cases of the
        phones it answered, naming its address and MAC."""
        from framework.dhcp.watch import DhcpWatchError, ForeignDhcpWatch
        from framework.netns import interface_mac

        try:
            own = [interface_mac(self.rig.lab.interface)]
        except (NamespaceError, OSError):
            own = []
        try:
            self.foreign_dhcp = ForeignDhcpWatch(
                self.rig.lab.interface, own_macs=own, own_ips=[self.lab_ip],
                netns=self.rig.lab.netns).start()
        except DhcpWatchError as exc:
            raise RigFault(f"cannot watch the lab interface for other DHCP servers: {exc}") \
                from None
        self._stack.callback(self.foreign_dhcp.stop)

    def _foreign_fault(self, spec: PhoneSpec, since: float, until: float | None = None
                       ) -> str | None:
        """A foreign DHCP server's answer to this phone (or to everyone) in the case that
        began at ``since`` (and ended at ``until``): one that arrived in it, or one to a
        DISCOVER/REQUEST the phone sent in it (same xid), whenever it came."""
        if self.foreign_dhcp is None:
            return None
        xids = {m.xid for m in self.dhcp.transcript(spec.mac_colon)
                if m.direction == "received" and m.time >= since
                and (until is None or m.time < until)}
        seen = self.foreign_dhcp.seen(since, mac=spec.mac_colon, until=until)
        seen += [m for m in self.foreign_dhcp.seen(since, mac=spec.mac_colon, xids=xids)
                 if m not in seen]
        seen.sort(key=lambda m: m.time)
        return self.foreign_dhcp.describe(seen) if seen else None

    def _on_dhcp(self, m: Any) -> None:
        """A phone's new lease starts a new cycle: its DNS cache is empty, so a TFTP/FTP
        request is attributed only to names it looked up after this ACK."""
        if new_lease(m) and self.services is not None and m.yiaddr not in ("", "0.0.0.0"):
            self.services.log.forget_names(m.yiaddr, before=m.time)

    def _is_rig_phone(self, ip: str) -> bool:
        """Safety: files go only to addresses leased to (or fixed for) the rig's phones."""
        mac = self.dhcp.mac_for_ip(ip) if self.dhcp is not None else None
        return mac is not None and mac.replace(":", "").upper() in self._rig_macs

    def _latest_link(self) -> None:
        latest = self.options.reports_dir / "latest"
        with contextlib.suppress(OSError):
            if latest.is_symlink() or latest.exists():
                latest.unlink()
            latest.symlink_to(self.run_id)

    def _check_interface(self) -> None:
        """The lab interface must exist here (a missing NIC is a rig fault, said plainly)."""
        if not os.path.exists(f"/sys/class/net/{self.rig.lab.interface}") and \
                not self.rig.lab.netns:
            raise RigFault(f"lab interface {self.rig.lab.interface!r} does not exist on this host")
        if self.rig.lab.netns:
            from framework.netns import interface_mac

            try:
                interface_mac(self.rig.lab.interface)
            except NamespaceError as exc:
                raise RigFault(f"lab interface {self.rig.lab.interface!r}: {exc}") from None

    def _refuse_other_dhcp(self) -> None:
        """Safety: never serve DHCP where another server already answers (an outage)."""
        from framework.dhcp.probe import (
            PROBE_WINDOW_S,
            RogueDhcpServerError,
            refuse_rogue_servers,
        )

        # The whole window (a server that checks the address first answers 2-3 s late),
        # except on a simulated lab network this run created a moment ago: nobody else
        # can be on it yet, and the passive watch covers the rest of the run.
        window = 1.0 if self.sim_started else PROBE_WINDOW_S
        try:
            refuse_rogue_servers(self.rig.lab.interface, timeout=window)
        except RogueDhcpServerError as exc:
            raise RigFault(f"refusing to start: {exc} (--allow-other-dhcp to override)") \
                from None

    def _sim_running(self) -> bool:
        proc = subprocess.run([sys.executable, "-m", "framework.cli", "sim", "status", "--rig",
                               str(self.options.rig_path), "--json"], capture_output=True,
                              text=True, cwd=ROOT, timeout=60)
        try:
            return bool(json.loads(proc.stdout).get("running"))
        except (json.JSONDecodeError, AttributeError):
            return False

    def _sim_up(self) -> None:
        if self._sim_running():
            return  # someone else's lab (or a killed run's): use it, leave it up
        proc = subprocess.run([sys.executable, "-m", "framework.cli", "sim", "up", "--rig",
                               str(self.options.rig_path)], capture_output=True, text=True,
                              cwd=ROOT, timeout=120)
        if proc.returncode != 0:
            raise RigFault("simulated rig did not start: " +
                           (proc.stderr.strip().splitlines() or ["(no message)"])[-1])
        self.sim_started = True

    def _sim_down(self) -> None:
        subprocess.run([sys.executable, "-m", "framework.cli", "sim", "down", "--rig",
                        str(self.options.rig_path)], capture_output=True, text=True, cwd=ROOT,
                       timeout=120)
        self.sim_started = False

    def _start_capture(self) -> None:
        from framework.services import CaptureError, PacketCapture

        try:
            self.capture = PacketCapture(self.rig.lab.interface, self.run_dir / "lab.pcap",
                                         bpf_filter=self._capture_filter())
            self.capture.start()
            self._stack.callback(self.capture.stop)
        except CaptureError as exc:  # capture is evidence, not a precondition
            log.warning("packet capture unavailable: %s", exc)
            self.capture = None

    def _capture_filter(self) -> str | None:
        """The lab capture leaves out bench equipment (PDU, terminal servers): their
        traffic carries credentials in clear (SNMP community, serial logins) and is not
        evidence of what a phone did."""
        from urllib.parse import urlsplit as split

        hosts = {str(getattr(p, "host", "")) for p in self.rig.pdus if getattr(p, "host", None)}
        for phone in self.rig.phones:
            serial = phone.console.serial
            if serial is not None and "://" in serial.url:
                host = split(serial.url).hostname
                if host:
                    hosts.add(host)
        hosts.discard("")
        return " and ".join(f"not host {h}" for h in sorted(hosts)) or None

    def _lane_capture(self, spec: PhoneSpec) -> Any:
        """One capture of a phone's traffic (its frames and its DHCP) for the whole run;
        each case's ``traffic.pcap`` is sliced out of it by time (:class:`PcapTail`)."""
        from framework.services import CaptureError, PacketCapture, PcapTail

        mac = spec.mac.lower()
        chaddr = f"udp[36:4] == 0x{mac[:8]} and udp[40:2] == 0x{mac[8:]}"
        bpf = f"ether host {spec.mac_colon.lower()} or (udp port 67 and {chaddr})"
        path = self.run_dir / "evidence" / _safe(spec.name) / f"run-{int(time.time())}.pcap"
        try:
            capture = PacketCapture(self.rig.lab.interface, path, bpf_filter=bpf).start()
        except CaptureError as exc:
            log.warning("no capture for %s: %s", spec.name, exc)
            return None
        self._stack.callback(capture.stop)
        return PcapTail(path)

    @staticmethod
    def _case_capture(lane: Lane, since: float, path: Path) -> Any:
        """What ``run_case`` stops at the end of a case: slicing the lane's capture."""
        tail = lane.capture
        if tail is None:
            return None

        class _Slice:
            done = False

            def stop(self) -> None:
                if self.done:
                    return
                self.done = True
                try:
                    tail.slice(since, path)
                except (OSError, ValueError, RuntimeError) as exc:
                    log.warning("no traffic.pcap for %s: %s", lane.spec.name, exc)
        return _Slice()

    def _run_meta(self) -> dict[str, Any]:
        return {"id": self.run_id, "rig": self.rig.name, "rig_file": str(self.options.rig_path),
                "framework_revision": framework_revision(), "start": time.time(), "end": None,
                "status": "running", "trigger": self.options.trigger,
                "settle_s": self.settle_s, "profile_override": self.options.profile,
                "host": os.uname().nodename}

    def _phones_meta(self) -> list[dict[str, Any]]:
        return [{"name": lane.spec.name, "model": lane.spec.model, "mac": lane.spec.mac,
                 "address": str(lane.spec.address), "firmware": lane.spec.firmware,
                 "expected_firmware": lane.spec.firmware, "profile": None, "state": "pending"}
                for lane in self.lanes.values()]

    def _open_lane(self, lane: Lane) -> None:
        """Reach the phone, read its identity back, choose its profile; else quarantine."""
        assert self.record is not None
        try:
            lane.link = open_phone(self.rig, lane.spec, self.run_dir / "consoles",
                                   dhcp=self.dhcp, boot_timeout_s=self.options.boot_timeout_s)
            identity = lane.link.identity()
            lane.firmware = identity.firmware
            from framework.phone import model_matches

            if not model_matches(lane.spec.model, identity.model) or identity.mac != lane.spec.mac:
                raise RigFault(f"phone {lane.spec.name} reports model {identity.model} MAC "
                               f"{identity.mac}; the rig says {lane.spec.model} {lane.spec.mac}")
            lane.url_option = identity.url_option
            lane.profile = (get_profile(self.options.profile) if self.options.profile
                            else profile_for_version(identity.firmware))
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
        with contextlib.suppress(Exception):
            self._stack.close()
        if self.sim_started:
            self._sim_down()

    def __enter__(self) -> LabSession:
        return self.start()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.stop("interrupted" if exc_type is KeyboardInterrupt else
                  "failed" if exc_type else "finished")

    # --- scheduling -------------------------------------------------------------------

    def schedule(self, items: Sequence[tuple[Case, str]],
                 on_done: Callable[[dict[str, Any]], None] | None = None,
                 on_judged: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Start one lane per phone running its cases in order; results as futures.

        A case's future (and ``on_done``) gets its final entry: once the lane's next case
        has its DHCP ACK, or the lane ended, so that late requests have amended it.
        ``on_judged`` gets the entry as soon as the verdict is given (provisional)."""
        assert self.record is not None
        done = {(c["id"], c["phone"]): c for c in self.record.cases}
        for case, phone in items:
            if phone not in self.lanes:
                raise RigFault(f"case {case.id}: phone {phone!r} is not in this run")
            fut: Future[dict[str, Any]] = Future()
            self._futures[(case.id, phone)] = fut
            if (case.id, phone) in done:  # resumed: finished in the earlier run
                fut.set_result(done[(case.id, phone)])
                continue
            self.lanes[phone].queue.append(case)
        for lane in self.lanes.values():
            if lane.queue:
                t = threading.Thread(target=self._lane, args=(lane, on_done, on_judged),
                                     name=f"lane-{lane.spec.name}", daemon=True)
                self._threads.append(t)
                t.start()

    def result(self, case_id: str, phone: str, timeout: float | None = None) -> dict[str, Any]:
        return self._futures[(case_id, phone)].result(timeout=timeout)

    def _lane(self, lane: Lane, on_done: Callable[[dict[str, Any]], None] | None,
              on_judged: Callable[[dict[str, Any]], None] | None = None) -> None:
        for case in lane.queue:
            fut = self._futures[(case.id, lane.spec.name)]
            if self._stop.is_set():
                fut.cancel()
                continue
            lost = self._guard_says()
            try:
                if lost is not None:  # fencing: this run no longer holds its bench
                    result = self._result(lane, case, None, [], [], Verdict.SKIPPED,
                                          f"not run: {lost}", start=time.time())
                else:
                    result = self.run_case(lane, case)
            except BaseException as exc:  # a bug here must not hang the test waiting on it
                result = self._result(lane, case, None, [], [], Verdict.BROKEN,
                                      f"framework error: {exc!r}", start=time.time(),
                                      extra={"traceback": traceback.format_exc()})
            assert self.record is not None
            self.record.add_case(result)  # durable now; late requests may amend it
            if on_judged is not None:
                with contextlib.suppress(Exception):
                    on_judged(result)

            def final(entry: dict[str, Any], fut: Future[dict[str, Any]] = fut) -> None:
                fut.set_result(entry)
                if on_done is not None:
                    with contextlib.suppress(Exception):
                        on_done(entry)
            pending = lane.pending
            if pending is not None and pending.entry is result:
                pending.on_final = final  # final once the next case's ACK (or the end) came
            else:
                final(result)
        self._tail(lane)
        self._close_previous(lane, time.time())

    def _tail(self, lane: Lane) -> None:
        """After the lane's last case: a phone that did not say its cycle was over (the
        console hint) may still make late requests; listen for them up to ``tail_s``."""
        pending = lane.pending
        if pending is None or pending.window.done or lane.link is None or self._stop.is_set():
            return
        done = threading.Event()
        unwatch = lane.link.watch_provisioning_done(done.set)
        try:
            done.wait(self.tail_s)
        finally:
            if unwatch is not None:
                unwatch()

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

    # --- one case ---------------------------------------------------------------------

    def run_case(self, lane: Lane, case: Case) -> dict[str, Any]:
        """One case on one phone: options, trigger, the phone's requests, the verdict.

        The entry returned is final unless the phone makes requests after it: the lane's
        next case (its DHCP ACK), or the end of the lane, amends it (:meth:`_close_previous`).
        """
        spec = lane.spec
        start = time.time()
        options = case.render(self.lab_ip, LAB_DNS_NAME)
        if lane.broken:
            self._close_previous(lane, start)
            return self._result(lane, case, None, [], [], Verdict.BROKEN,
                                f"phone quarantined: {lane.broken}", start=start,
                                options=options)
        assert lane.link is not None and lane.profile is not None
        settings = PhoneSettings(url_option=case.url_option)
        expected = resolve(options, PhoneIdentity(spec.model, spec.mac), lane.profile, settings)
        for req in expected.requests:
            if req.purpose == "configuration":
                path = urlsplit(req.url).path
                self.services.content.serve(path, LAB_CONFIG)
        evidence_dir = self.run_dir / "evidence" / _safe(spec.name) / _safe(case.id)
        capture = self._case_capture(lane, start, evidence_dir / "traffic.pcap")
        try:
            return self._trigger_and_judge(lane, case, expected, options, capture)
        finally:
            if capture is not None:
                with contextlib.suppress(Exception):
                    capture.stop()

    def _listener(self, lane: Lane) -> CaseListener:
        assert lane.link is not None
        return CaseListener(self.services.log, self.dhcp, lane.spec, settle_s=self.settle_s,
                            request_timeout_s=self.request_timeout_s,
                            boot_timeout_s=self.options.boot_timeout_s,
                            restarts=lane.link.watch_restart)

    def _trigger_and_judge(self, lane: Lane, case: Case, expected: ExpectedProvisioning,
                           options: dict[int, bytes], capture: Any) -> dict[str, Any]:
        spec = lane.spec
        assert lane.link is not None and lane.profile is not None
        trigger_at = time.time()
        # The console's word that provisioning is over ends the wait for requests the core
        # expects but the phone does not make (then the settle window still runs).
        finished = threading.Event()
        acked = threading.Event()  # the previous cycle's last words come before our ACK

        def said_done() -> None:
            if acked.is_set():
                finished.set()
                self.services.log.wake()
        listener = self._listener(lane)
        checked: dict[str, Any] = {}
        with contextlib.ExitStack() as watching:
            unwatch = lane.link.watch_provisioning_done(said_done)
            if unwatch is not None:
                watching.callback(unwatch)
            watching.enter_context(listener)
            try:
                if lane.url_option != case.url_option:
                    lane.link.set_setting("provisioning/url_option_value", str(case.url_option))
                    lane.url_option = case.url_option
                self.dhcp.set_options(spec.mac_colon, options)
                trigger_at = time.time()
                path = lane.link.trigger(self.options.trigger)
                ack_at = listener.await_ack(trigger_at)
                acked.set()
            except RigFault as exc:
                self._close_previous(lane, self._first_ack(spec, trigger_at))
                health = lane.link.health() if lane.link is not None else None
                foreign = self._foreign_fault(spec, trigger_at)
                reason = (f"{foreign + '; ' if foreign else ''}"
                          f"{self._dhcp_evidence(spec, trigger_at)}"
                          f"{health + '; ' if health else ''}{exc}")
                lane.broken = reason
                assert self.record is not None
                self.record.update_phone(spec.name, state="quarantined", broken_reason=reason)
                return self._result(lane, case, expected, [], [], Verdict.BROKEN, reason,
                                    start=trigger_at, options=options)
            window = CaseWindow(trigger_at)

            # A firmware verdict only when the rig worked: our own services (a service
            # that served the phone in this case is alive) and the phone's power and
            # console are checked in every case, once the phone is quiet.
            def check(seen: set[str]) -> None:
                needed = _needed_services(expected, [], []) | seen
                checked["needed"] = needed
                checked["fault"] = self._rig_fault(lane, needed, alive=self._served(window),
                                                   since=window.opened_at)

            try:
                listener.listen(window, len(expected.requests), ack_at, finished=finished,
                                on_settle=check)
            except RigFault as exc:  # a second DHCP cycle that got no lease
                checked["fault"] = checked.get("fault") or f"{spec.name}: {exc}"
        # Before this case's ACK the phone could not know the case's options: what it
        # asked for until then belongs to the previous case. Closed only now, so that a
        # transfer begun before the ACK has surely been logged (a service logs a request
        # when its transfer ends).
        self._close_previous(lane, ack_at)
        files: list[Observed] = []
        dns: list[Observed] = []
        for cycle in window.cycles:
            f, d = observed(cycle.records)
            files, dns = files + f, dns + d
        judgement: Judgement = judge_cycles(expected, window, mac=spec.mac, model=spec.model,
                                            interp=lane.profile.interpretation)
        fault = self._foreign_fault(spec, trigger_at) or checked.get("fault")
        late = _needed_services(expected, files, dns) - checked.get("needed", set())
        if fault is None and late:  # the phone used a service after the check began
            fault = self.services_fault(late, alive=self._served(window),
                                        since=window.opened_at)
        extra = {"trigger": path, "ack_at": [c.ack_at for c in window.cycles],
                 "cycles": len(window.cycles)}
        if fault is not None:
            if fault.startswith(spec.name):
                lane.broken = fault
                assert self.record is not None
                self.record.update_phone(spec.name, state="quarantined", broken_reason=fault)
            return self._result(lane, case, expected, files, dns, Verdict.BROKEN,
                                f"rig fault during the case: {fault}", start=trigger_at,
                                options=options, extra={
                                    **extra, "would_have_been": judgement.verdict.value})
        if capture is not None:
            with contextlib.suppress(Exception):
                capture.stop()
        entry = self._result(lane, case, expected, files, dns, judgement.verdict,
                             judgement.reason, start=trigger_at, options=options,
                             extra={**extra, "differences": list(judgement.differences),
                                    "matches_core": judgement.matches})
        lane.pending = PendingCase(entry, expected, window, listener)
        return entry

    def _first_ack(self, spec: PhoneSpec, since: float) -> float:
        """When the phone got its first new lease since ``since`` (else now): the end of
        the previous case's window when this case's trigger went wrong."""
        return next((m.time for m in self.dhcp.transcript(spec.mac_colon)
                     if m.time >= since and new_lease(m)), time.time())

    def _served(self, window: CaseWindow) -> set[str]:
        """The services that answered the phone in this case: alive, no probe needed."""
        return {r.protocol for c in window.cycles for r in c.records
                if r.outcome in ("served", "not-found")}

    def _close_previous(self, lane: Lane, until: float) -> None:
        """The lane's previous case is over: what its phone requested after its verdict
        and before ``until`` (this case's ACK, or the end of the lane) amends it."""
        pending, lane.pending = lane.pending, None
        if pending is None:
            return
        entry = pending.entry
        late = pending.listener.late(pending.window, until)
        foreign = (self._foreign_fault(lane.spec, entry["start"], until)
                   if entry["verdict"] != "broken" else None)
        if foreign is not None:  # a foreign server's answer came after the verdict
            entry = {**entry, "verdict": "broken", "would_have_been": entry["verdict"],
                     "reason": f"rig fault during the case: {foreign}"}
            log.warning("%s %s: %s", lane.spec.name, entry["id"], entry["reason"])
            if self.record is not None:
                self.record.amend_case(entry)
            late = []
        if late:
            assert lane.profile is not None
            entry = amend_late(entry, pending.expected, pending.window, late,
                               mac=lane.spec.mac, interp=lane.profile.interpretation,
                               settle_s=self.settle_s, model=lane.spec.model)
            with contextlib.suppress(OSError):
                entry["evidence"] = [*entry.get("evidence", []),
                                     self._late_evidence(lane, entry, late)]
            log.warning("%s %s: %s", lane.spec.name, entry["id"], entry["reason"])
            if self.record is not None:
                self.record.amend_case(entry)
        if pending.on_final is not None:
            pending.on_final(entry)

    def _late_evidence(self, lane: Lane, entry: dict[str, Any], late: list[Any]
                       ) -> dict[str, Any]:
        d = self.run_dir / "evidence" / _safe(lane.spec.name) / _safe(entry["id"])
        d.mkdir(parents=True, exist_ok=True)
        path = d / "late-requests.jsonl"
        with path.open("w") as f:
            for r in late:
                f.write(json.dumps(r.to_dict(), sort_keys=True) + "\n")
        return evidence_entry(path, self.run_dir, "late-requests")

    def _dhcp_evidence(self, spec: PhoneSpec, since: float) -> str:
        """What DHCP saw of the phone since ``since``, when it did not get a lease."""
        msgs = [m for m in self.dhcp.transcript(spec.mac_colon) if m.time >= since]
        if any(m.direction == "sent" and m.message_type == "ACK" for m in msgs):
            return ""
        got = [m for m in msgs if m.direction == "received"]
        if not got:
            return "no DHCP DISCOVER from the phone; "
        ignored = any(m.ignored for m in got)
        kinds = sorted({m.message_type for m in got})
        return (f"no DHCP lease ({len(got)} {'/'.join(kinds)} from the phone"
                f"{', all ignored by the lab DHCP server' if ignored else ', no ACK'}); ")

    def services_fault(self, needed: set[str] | None = None,
                       alive: set[str] | frozenset[str] = frozenset(),
                       since: float | None = None) -> str | None:
        """Whether our own services (all, or the ``needed`` protocols) answer (ServiceProbe);
        a liveness older than ``since`` does not count."""
        return self.probe.fault(needed, alive=alive, since=since)

    def _rig_fault(self, lane: Lane, needed: set[str] | None = None,
                   alive: set[str] | frozenset[str] = frozenset(),
                   since: float | None = None) -> str | None:
        fault = self.services_fault(needed, alive=alive, since=since)
        if fault is None and lane.link is not None:
            problem = lane.link.health()
            if problem:
                fault = f"{lane.spec.name}: {problem}"
        return fault

    # --- evidence and the case entry ---------------------------------------------------

    def _result(self, lane: Lane, case: Case, expected: ExpectedProvisioning | None,
                files: list[Observed], dns: list[Observed], verdict: Verdict, reason: str, *,
                start: float, options: dict[int, bytes] | None = None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
        spec = lane.spec
        shown = case.to_dict(self.lab_ip)["options"]
        entry: dict[str, Any] = {
            "id": case.id, "group": case.group, "title": case.title, "manual": case.source,
            "phone": spec.name, "model": spec.model, "mac": spec.mac,
            "firmware": lane.firmware or spec.firmware,
            "profile": lane.profile.name if lane.profile else None,
            "url_option": case.url_option, "options": shown,
            "expected": expected.to_dict() if expected else None,
            "observed": offset_dicts(sorted(files + dns, key=lambda o: o.time), start),
            "verdict": verdict.value, "reason": reason, "start": start, "end": time.time(),
            "evidence": [],
        }
        entry.update(extra or {})
        if expected is not None or files or dns:
            try:
                entry["evidence"] = self._evidence(lane, case, entry, start)
            except OSError as exc:
                entry["evidence_error"] = str(exc)
        return entry

    def _evidence(self, lane: Lane, case: Case, entry: dict[str, Any], start: float
                  ) -> list[dict[str, Any]]:
        spec = lane.spec
        d = self.run_dir / "evidence" / _safe(spec.name) / _safe(case.id)
        d.mkdir(parents=True, exist_ok=True)
        out = []
        table = d / "expected-vs-observed.txt"
        table.write_text(expected_vs_observed(entry))
        out.append(evidence_entry(table, self.run_dir, "expected-vs-observed"))
        reqs = d / "requests.jsonl"
        mine = phone_matcher(spec)
        since = (entry.get("ack_at") or [start])[0]  # the case's requests begin at its ACK
        with reqs.open("w") as f:
            for r in self.services.log.records(since=since):
                if mine(r):
                    f.write(json.dumps(r.to_dict(), sort_keys=True) + "\n")
        out.append(evidence_entry(reqs, self.run_dir, "request-log"))
        dhcp = d / "dhcp-transcript.json"
        msgs = [m for m in self.dhcp.transcript(spec.mac_colon) if m.time >= start - 0.001]
        dhcp.write_text(json.dumps([m.to_dict() for m in msgs], indent=1, sort_keys=True))
        out.append(evidence_entry(dhcp, self.run_dir, "dhcp-transcript"))
        if lane.link is not None:
            console = lane.link.console_excerpt(start, d / "console.log")
            if console is not None:
                out.append(evidence_entry(console, self.run_dir, "console-log"))
        pcap = d / "traffic.pcap"
        if pcap.exists():
            out.append(evidence_entry(pcap, self.run_dir, "pcap"))
        return out


def _needed_services(expected: ExpectedProvisioning, files: list[Observed],
                     dns: list[Observed]) -> set[str]:
    """The lab services a case depends on: the protocols it expects or saw, and DNS when a
    host name is involved."""
    import ipaddress

    needed = {o.protocol for o in files}
    if dns:
        needed.add("dns")
    for req in expected.requests:
        proto, _, rest = req.url.partition("://")
        needed.add(proto)
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1].strip("[]")
        host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        try:
            ipaddress.ip_address(host)
        except ValueError:
            needed.add("dns")
    return needed


def expected_vs_observed(entry: dict[str, Any]) -> str:
    """The human table attached to every case."""
    exp = entry.get("expected") or {}
    lines = [f"case      {entry['id']}  ({entry.get('manual')})",
             f"phone     {entry['phone']}  {entry['model']}  {entry['mac']}  firmware "
             f"{entry.get('firmware')}  profile {entry.get('profile')}",
             "options   " + ", ".join(f"{k}={v!r}" for k, v in entry["options"].items()),
             f"verdict   {entry['verdict']}: {entry['reason']}", "",
             f"expected  (rule {exp.get('rule')}, {exp.get('promise')}, source "
             f"{exp.get('source')})",
             f"  firmware       {exp.get('firmware_url')}",
             f"  configuration  {exp.get('config_url')}", "", "observed"]
    start = entry.get("start") or 0.0
    for o in entry.get("observed", []):
        lines.append(f"  +{o['time'] - start:7.3f}s  {o['protocol']:<5}  "
                     f"{o.get('url') or o.get('host')}  ({o.get('outcome')})")
    if not entry.get("observed"):
        lines.append("  (nothing)")
    return "\n".join(lines) + "\n"
