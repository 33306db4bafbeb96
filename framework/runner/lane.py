"""The lane: one phone's case loop, from the DHCP options to the final verdict.

Per case (ARCHITECTURE.md): the core says what the phone must request; the DHCP server
hands the phone exactly the case's options; the phone is triggered (re-provisioning or a
power cycle); the provisioning services record every request; the verdict compares the
two. Waits are events (the DHCP ACK, the phone's requests, the console's word) plus one
deliberate wait, the settle window. A case's window runs from its ACK to the next case's
ACK: what the phone asks for after the verdict amends the case (late requests), so a
case's result is final only once the next case has its ACK or the lane has ended.

Rig faults are *broken*, never *failed*, and quarantine the phone when they are the
phone's own.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from framework.errors import RigFault
from framework.records import CaseResult, ObservedRequest
from framework.resolution import (
    ExpectedProvisioning,
    PhoneIdentity,
    PhoneSettings,
    Profile,
    resolve,
)
from framework.rig import PhoneSpec
from framework.runner.catalogue import LAB_DNS_NAME, Case
from framework.runner.cycle import (
    CaseListener,
    CaseWindow,
    amend_late,
    dhcp_events,
    judge_cycles,
    new_lease,
    observed,
    offset_dicts,
)
from framework.runner.evidence import EvidenceWriter, expected_vs_observed
from framework.runner.failures import ConditionCase, amend_late_condition, applied, conclude
from framework.runner.identification import judge_identification, with_identification
from framework.runner.phones import PhoneLink
from framework.runner.rigprobe import RigProbe, needed_services, served
from framework.runner.settings import (
    RANDOM_TIME,
    URL_OPTION,
    apply_settings,
    url_option_proof,
)
from framework.runner.verdict import Judgement, Observed, Verdict

log = logging.getLogger(__name__)

#: What every expected configuration URL serves (the same bytes for every lane, so lanes
#: sharing a path never race); firmware URLs answer not-found, so no phone is ever flashed
#: by a matrix run.
LAB_CONFIG = b"# 400HD provisioning lab: configuration served to the phone under test\n"

Done = Callable[[CaseResult], None]


@dataclass
class Lane:
    """One phone's lane: its driver, its profile and, once broken, why (quarantine)."""

    spec: PhoneSpec
    link: PhoneLink | None = None
    profile: Profile | None = None
    firmware: str | None = None
    #: The phone's URL option setting as the lab last served it in a configuration file
    #: (framework.runner.settings); None until then: the lab cannot read it back.
    url_option: int | None = None
    #: Every setting the lab has served this phone (the last value of each).
    settings: dict[str, str] = field(default_factory=dict)
    #: why the last settings cycle does not show the phone took the file (it did not fetch it)
    settings_unproven: str | None = None
    broken: str | None = None
    queue: list[Case] = field(default_factory=list)
    capture: Any = None  # the phone's capture for the whole run (a PcapTail to slice)
    #: The last case judged, until its late requests can no longer come (the next ACK).
    pending: PendingCase | None = None


@dataclass
class PendingCase:
    """A judged case whose phone may still make late requests; ``on_final`` receives the
    result (amended or not) when the lane's next case has its ACK, or the lane ends."""

    entry: CaseResult
    expected: ExpectedProvisioning
    window: CaseWindow
    listener: CaseListener
    on_final: Done | None = None


@dataclass
class LaneContext:
    """What a lane uses of its run: the lab stack, the record, the evidence writer, the
    rig probe and the run's timings."""

    stack: Any
    record: Any  # a CertificationRecord
    evidence: EvidenceWriter
    probe: RigProbe
    lab_ip: str
    trigger: str
    settle_s: float
    request_timeout_s: float
    boot_timeout_s: float
    tail_s: float
    #: served to each phone with its first case's settings (None: the phone keeps its own)
    random_provisioning_time: int | None
    stop: threading.Event
    #: Why this run must not drive its phones any more (fencing), or None.
    guard: Callable[[], str | None]


class LaneRunner:
    """Runs one lane's queue; each case's future gets its final result."""

    def __init__(self, ctx: LaneContext, lane: Lane) -> None:
        self.ctx = ctx
        self.lane = lane

    # --- the loop -------------------------------------------------------------------

    def run(self, futures: dict[tuple[str, str], Future[CaseResult]], on_done: Done | None,
            on_judged: Done | None = None) -> None:
        lane = self.lane
        for case in lane.queue:
            fut = futures[(case.id, lane.spec.name)]
            if self.ctx.stop.is_set():
                fut.cancel()
                continue
            lost = self.ctx.guard()
            try:
                if lost is not None:  # fencing: this run no longer holds its bench
                    result = self._result(case, None, [], Verdict.SKIPPED, f"not run: {lost}",
                                          start=time.time())
                else:
                    result = self.run_case(case)
            except BaseException as exc:  # a bug here must not hang the test waiting on it
                result = self._result(case, None, [], Verdict.BROKEN,
                                      f"framework error: {exc!r}", start=time.time(),
                                      extra={"traceback": traceback.format_exc()})
            self.ctx.record.add_case(result)  # durable now; late requests may amend it
            if on_judged is not None:
                with contextlib.suppress(Exception):
                    on_judged(result)

            def final(entry: CaseResult, fut: Future[CaseResult] = fut) -> None:
                fut.set_result(entry)
                if on_done is not None:
                    with contextlib.suppress(Exception):
                        on_done(entry)
            pending = lane.pending
            if pending is not None and pending.entry is result:
                pending.on_final = final  # final once the next case's ACK (or the end) came
            else:
                final(result)
        self._tail()
        self.close_previous(time.time())
        self._restore_settings()

    def _restore_settings(self) -> None:
        """Put back the factory URL option (160) when the lane changed it, the same way it
        changed it: a configuration file the phone fetches."""
        lane = self.lane
        if lane.url_option in (None, 160) or lane.broken or lane.link is None or \
                self.ctx.stop.is_set():
            return
        try:
            self._apply({URL_OPTION: "160"})
        except RigFault as exc:
            log.warning("%s: could not restore %s=160: %s", lane.spec.name, URL_OPTION, exc)
            self.ctx.record.update_phone(lane.spec.name, broken_reason=(
                f"after its cases: could not restore {URL_OPTION}=160: {exc}"))

    def _apply(self, settings: dict[str, str]) -> None:
        """One settings cycle (framework.runner.settings); the lane knows the values only
        once the phone fetched the file."""
        lane, ctx = self.lane, self.ctx
        assert lane.link is not None
        lane.url_option = None  # unknown while the phone is being changed
        applied = apply_settings(spec=lane.spec, link=lane.link, stack=ctx.stack,
                                 listener=self._listener(), lab_ip=ctx.lab_ip,
                                 settings=settings, trigger=ctx.trigger)
        self.close_previous(applied.ack_at)
        # Served, so assumed from now on; each case's DHCP request proves it or not.
        if URL_OPTION in settings:
            lane.url_option = int(settings[URL_OPTION])
        lane.settings.update(settings)
        lane.settings_unproven = applied.unproven
        ctx.record.update_phone(lane.spec.name, settings=dict(lane.settings))
        if applied.unproven:
            log.warning("%s: settings %s: %s", lane.spec.name, settings, applied.unproven)
        else:
            log.info("%s: settings %s served in %s and fetched (%s)", lane.spec.name,
                     settings, applied.url, applied.trigger)

    def _settings_for(self, case: Case) -> dict[str, str] | None:
        """What the phone must be told before ``case``: its URL option when the lab does
        not know it to be the case's (and, with the lane's first one, the random
        provisioning time the run serves), else None."""
        lane = self.lane
        if lane.url_option == case.url_option:
            return None
        wanted = {URL_OPTION: str(case.url_option)}
        rpt = self.ctx.random_provisioning_time
        if rpt is not None and lane.settings.get(RANDOM_TIME) != str(rpt):
            wanted[RANDOM_TIME] = str(rpt)
        return wanted

    def _tail(self) -> None:
        """After the lane's last case: a phone that did not say its cycle was over (the
        console hint) may still make late requests; listen for them up to ``tail_s``."""
        lane = self.lane
        pending = lane.pending
        if pending is None or pending.window.done or lane.link is None or \
                self.ctx.stop.is_set():
            return
        done = threading.Event()
        unwatch = lane.link.watch_provisioning_done(done.set)
        try:
            done.wait(self.ctx.tail_s)
        finally:
            if unwatch is not None:
                unwatch()

    # --- one case -------------------------------------------------------------------

    def run_case(self, case: Case) -> CaseResult:
        """One case on one phone: options, trigger, the phone's requests, the verdict.

        The result returned is final unless the phone makes requests after it: the lane's
        next case (its DHCP ACK), or the end of the lane, amends it (:meth:`close_previous`).
        """
        lane, spec = self.lane, self.lane.spec
        start = time.time()
        options = case.render(self.ctx.lab_ip, LAB_DNS_NAME)
        if lane.broken:
            self.close_previous(start)
            return self._result(case, None, [], Verdict.BROKEN,
                                f"phone quarantined: {lane.broken}", start=start)
        assert lane.link is not None and lane.profile is not None
        expected = resolve(options, PhoneIdentity(spec.model, spec.mac), lane.profile,
                           PhoneSettings(url_option=case.url_option))
        for req in expected.requests:
            if req.purpose == "configuration":
                self.ctx.stack.services.content.serve(urlsplit(req.url).path, LAB_CONFIG)
        settings = self._settings_for(case)
        if settings is not None:
            try:
                self._apply(settings)
            except RigFault as exc:
                return self._trigger_failed(case, expected, start, exc)
        # the case's own traffic: from after its settings cycle (which has no case)
        capture = self.ctx.evidence.traffic_slice(spec, lane.capture, case.id, time.time())
        condition = getattr(case, "condition", None)  # framework.runner.failures
        try:
            with contextlib.ExitStack() as lab:
                if condition is not None:
                    lab.enter_context(applied(condition, self.ctx.stack.services, expected,
                                              self.ctx.lab_ip))
                return self._trigger_and_judge(case, expected, options, capture, settings)
        finally:
            if capture is not None:
                with contextlib.suppress(Exception):
                    capture.stop()

    def _listener(self) -> CaseListener:
        assert self.lane.link is not None
        c = self.ctx
        return CaseListener(c.stack.services.log, c.stack.dhcp, self.lane.spec,
                            settle_s=c.settle_s, request_timeout_s=c.request_timeout_s,
                            boot_timeout_s=c.boot_timeout_s,
                            restarts=self.lane.link.watch_restart)

    def _trigger(self, case: Case, options: dict[int, bytes], listener: CaseListener,
                 acked: threading.Event) -> tuple[str, float, float]:
        """The case's options to the phone, then the trigger; (how, trigger time, ACK)."""
        lane, link = self.lane, self.lane.link
        assert link is not None
        self.ctx.stack.dhcp.set_options(lane.spec.mac_colon, options)
        trigger_at = time.time()
        how = link.trigger(self.ctx.trigger)
        ack_at = listener.await_ack(trigger_at)
        acked.set()
        return how, trigger_at, ack_at

    def _trigger_and_judge(self, case: Case, expected: ExpectedProvisioning,
                           options: dict[int, bytes], capture: Any,
                           settings: dict[str, str] | None = None) -> CaseResult:
        lane, spec, ctx = self.lane, self.lane.spec, self.ctx
        assert lane.link is not None and lane.profile is not None
        trigger_at = time.time()
        # The console's word that provisioning is over ends the wait for requests the core
        # expects but the phone does not make (then the settle window still runs).
        finished = threading.Event()
        acked = threading.Event()  # the previous cycle's last words come before our ACK

        def said_done() -> None:
            if acked.is_set():
                finished.set()
                ctx.stack.services.log.wake()
        listener = self._listener()
        checked: dict[str, Any] = {}
        with contextlib.ExitStack() as watching:
            unwatch = lane.link.watch_provisioning_done(said_done)
            if unwatch is not None:
                watching.callback(unwatch)
            watching.enter_context(listener)
            try:
                how, trigger_at, ack_at = self._trigger(case, options, listener, acked)
            except RigFault as exc:
                return self._trigger_failed(case, expected, trigger_at, exc)
            window = CaseWindow(trigger_at)

            # A firmware verdict only when the rig worked: our own services (a service
            # that served the phone in this case is alive) and the phone's power and
            # console are checked in every case, once the phone is quiet.
            def check(seen: set[str]) -> None:
                checked["needed"] = needed_services(expected) | seen
                checked["fault"] = ctx.probe.rig_fault(
                    spec.name, lane.link, checked["needed"], alive=served(window),
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
        self.close_previous(ack_at)
        files: list[Observed] = []
        dns: list[Observed] = []
        for cycle in window.cycles:
            f, d = observed(cycle.records)
            files, dns = files + f, dns + d
        seen = files + dns
        judgement: Judgement = judge_cycles(expected, window, mac=spec.mac, model=spec.model,
                                            interp=lane.profile.interpretation)
        after = None
        if isinstance(case, ConditionCase):  # a failure path or an HTTPS refusal
            judgement, after = conclude(case, judgement, [r for c in window.cycles
                                                          for r in c.records],
                                        ack_at, lane.profile.interpretation)
        # What the phone says about itself in its DISCOVERs and REQUESTs, in every case.
        judgement = with_identification(judgement, judge_identification(
            [m for m in ctx.stack.dhcp.transcript(spec.mac_colon) if m.time >= trigger_at],
            model=spec.model, url_option=case.url_option, interp=lane.profile.interpretation))
        fault = ctx.probe.foreign_fault(spec, trigger_at) or checked.get("fault")
        # The URL option setting, proven on the wire: the case's first DHCP exchange asks
        # for the option the lab set (a phone that did not take it is broken, not failed).
        prl, not_taken = url_option_proof(ctx.stack.dhcp.transcript(spec.mac_colon),
                                          case.url_option, since=trigger_at, until=ack_at)
        if not_taken is not None:
            lane.url_option = None  # not what the lab served: serve it again next time
            if fault is None:
                why = lane.settings_unproven or "it was served in its configuration file"
                fault = f"phone {spec.name}: {not_taken} ({why})"
        used_late = needed_services(expected, files, dns) - checked.get("needed", set())
        if fault is None and used_late:  # the phone used a service after the check began
            fault = ctx.probe.services_fault(used_late, alive=served(window),
                                             since=window.opened_at)
        extra: dict[str, Any] = {"trigger": how, "ack_at": [c.ack_at for c in window.cycles],
                                 "cycles": len(window.cycles), "settings": settings,
                                 "parameter_list": prl, "settle_s": ctx.settle_s,
                                 "dhcp": dhcp_events(ctx.stack.dhcp.transcript(spec.mac_colon),
                                                     trigger_at),
                                 **({"aftermath": after} if after is not None else {})}
        if fault is not None:
            if fault.startswith(spec.name):
                self._quarantine(fault)
            return self._result(case, expected, seen, Verdict.BROKEN,
                                f"rig fault during the case: {fault}", start=trigger_at,
                                extra={**extra, "would_have_been": judgement.verdict.value})
        if capture is not None:
            with contextlib.suppress(Exception):
                capture.stop()
        entry = self._result(case, expected, seen, judgement.verdict, judgement.reason,
                             start=trigger_at,
                             extra={**extra, "differences": list(judgement.differences),
                                    "matches_core": judgement.matches,
                                    "assertions": list(judgement.assertions),
                                    "notes": list(judgement.notes)})
        lane.pending = PendingCase(entry, expected, window, listener)
        return entry

    def _trigger_failed(self, case: Case, expected: ExpectedProvisioning, trigger_at: float,
                        exc: RigFault) -> CaseResult:
        """The trigger or the lease went wrong: broken, with what DHCP saw, and the phone
        quarantined."""
        lane, spec, probe = self.lane, self.lane.spec, self.ctx.probe
        self.close_previous(self._first_ack(trigger_at))
        health = lane.link.health() if lane.link is not None else None
        foreign = probe.foreign_fault(spec, trigger_at)
        reason = (f"{foreign + '; ' if foreign else ''}{probe.dhcp_summary(spec, trigger_at)}"
                  f"{health + '; ' if health else ''}{exc}")
        self._quarantine(reason)
        return self._result(case, expected, [], Verdict.BROKEN, reason, start=trigger_at)

    def _quarantine(self, reason: str) -> None:
        self.lane.broken = reason
        self.ctx.record.update_phone(self.lane.spec.name, state="quarantined",
                                     broken_reason=reason)

    def _first_ack(self, since: float) -> float:
        """When the phone got its first new lease since ``since`` (else now): the end of
        the previous case's window when this case's trigger went wrong."""
        return next((m.time for m in self.ctx.stack.dhcp.transcript(self.lane.spec.mac_colon)
                     if m.time >= since and new_lease(m)), time.time())

    # --- late requests --------------------------------------------------------------

    def close_previous(self, until: float) -> None:
        """The lane's previous case is over: what its phone requested after its verdict
        and before ``until`` (this case's ACK, or the end of the lane) amends it."""
        lane, ctx = self.lane, self.ctx
        pending, lane.pending = lane.pending, None
        if pending is None:
            return
        entry = pending.entry
        late = pending.listener.late(pending.window, until)
        foreign = (ctx.probe.foreign_fault(lane.spec, entry.start, until)
                   if entry.verdict != "broken" else None)
        if foreign is not None:  # a foreign server's answer came after the verdict
            entry = entry.amended(verdict="broken", would_have_been=entry.verdict,
                                  reason=f"rig fault during the case: {foreign}")
            log.warning("%s %s: %s", lane.spec.name, entry.id, entry.reason)
            ctx.record.amend_case(entry)
            late = []
        if late and entry.aftermath is not None:  # a lab-condition case: its aftermath
            entry = amend_late_condition(entry, late)
        elif late:
            assert lane.profile is not None
            entry = amend_late(entry, pending.expected, pending.window, late,
                               mac=lane.spec.mac, interp=lane.profile.interpretation,
                               settle_s=ctx.settle_s, model=lane.spec.model)
            with contextlib.suppress(OSError):
                entry = entry.amended(evidence=[
                    *entry.evidence, ctx.evidence.late_requests(lane.spec, entry.id, late)])
            log.warning("%s %s: %s", lane.spec.name, entry.id, entry.reason)
            ctx.record.amend_case(entry)
        if pending.on_final is not None:
            pending.on_final(entry)

    # --- the result -----------------------------------------------------------------

    def _result(self, case: Case, expected: ExpectedProvisioning | None,
                seen: list[Observed], verdict: Verdict, reason: str, *, start: float,
                extra: dict[str, Any] | None = None) -> CaseResult:
        lane, spec = self.lane, self.lane.spec
        fields: dict[str, Any] = {
            "id": case.id, "group": case.group, "title": case.title, "manual": case.source,
            "phone": spec.name, "model": spec.model, "mac": spec.mac,
            "firmware": lane.firmware or spec.firmware,
            "profile": lane.profile.name if lane.profile else None,
            "url_option": case.url_option, "options": case.to_dict(self.ctx.lab_ip)["options"],
            "expected": expected.to_dict() if expected else None,
            "observed": [ObservedRequest.from_json(o, where=f"case {case.id}") for o in
                         offset_dicts(sorted(seen, key=lambda o: o.time), start)],
            "verdict": verdict.value, "reason": reason, "start": start, "end": time.time(),
            "evidence": [], **(extra or {}),
        }
        entry = CaseResult(**fields)
        if expected is None and not seen:
            return entry
        try:
            table = expected_vs_observed(entry)
            items = self.ctx.evidence.bundle(
                spec, lane.link, case.id, since=start,
                requests_since=(entry.ack_at or [start])[0],  # the case's requests: its ACK on
                summary=("expected-vs-observed.txt", "expected-vs-observed", table))
        except OSError as exc:
            return entry.amended(evidence_error=str(exc))
        return entry.amended(evidence=items)
