"""Which requests belong to which case: a provisioning cycle's boundaries, from the wire.

A request belongs to the case whose trigger *and* DHCP ACK precede it and whose next
trigger's ACK follows it: before the ACK the phone cannot know the case's options, so
what it asks for then is the previous cycle's (a retry, a queued fetch). Inside a case the
runner waits for the expected requests, then listens until the phone has been quiet for
the settle window; a new DHCP cycle of the phone in that window (a reboot after its
configuration, seen as a DISCOVER, or the console's reboot banner) is followed: its ACK,
its requests and its own settle window belong to the same case. What the phone requests
after the verdict and before the next case's ACK is a *late request* of that case.

Every wait here is an event wait (request log, DHCP transcript, console); the settle
window is the one deliberate window: "the phone said nothing more" has no event.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from framework.errors import RigFault
from framework.records import CaseResult, ObservedRequest
from framework.resolution import late_assertion
from framework.rig import PhoneSpec
from framework.runner.verdict import Judgement, Observed, Verdict, judge
from framework.services.log import build_url

FILE_PROTOCOLS = ("tftp", "http", "https", "ftp")
#: A DHCP message from the phone that starts a new cycle (not a renewal: RFC 2131 4.3.2,
#: a renewing REQUEST carries the leased address in ciaddr).
_UNSET = ("", "0.0.0.0")


def is_file_request(r: Any) -> bool:
    """A request for a file, not protocol chatter (FTP CWD/USER, HTTP to '/' probes...)."""
    if not r.url:
        return False
    if r.protocol == "ftp":
        return r.method.upper() in ("RETR", "SIZE", "MDTM")
    return True


def starts_cycle(m: Any) -> bool:
    """Whether a DHCP transcript record is the phone beginning a new DHCP cycle."""
    return m.direction == "received" and (
        m.message_type == "DISCOVER"
        or (m.message_type == "REQUEST" and (m.ciaddr or "") in _UNSET))


def new_lease(m: Any) -> bool:
    """Whether a DHCP transcript record is an ACK that ends a new cycle (not a renewal)."""
    return m.direction == "sent" and m.message_type == "ACK" and (m.ciaddr or "") in _UNSET


def phone_matcher(spec: PhoneSpec) -> Callable[[Any], bool]:
    """Whether a request record is this phone's (by MAC, else by its address)."""
    mac = spec.mac
    ip = str(spec.address)

    def match(r: Any) -> bool:
        rmac = (r.client_mac or "").replace(":", "").upper()
        return rmac == mac or r.client_ip == ip

    return match


def _named_in_cycle(r: Any, lookups: Sequence[Any]) -> bool:
    """Whether a TFTP/FTP request's host name comes from a look-up of this cycle: the
    phone asked our DNS for that name, was answered with the server's address, before the
    request (a look-up of an earlier cycle, logged late, does not count)."""
    name = (r.host or "").lower()
    return any(q.time <= r.time and (q.host or "").rstrip(".").lower() == name
               and r.server_ip in [str(a) for a in q.details.get("answer", ())]
               for q in lookups)


def _as_sent(r: Any, lookups: Sequence[Any]) -> tuple[str | None, str | None]:
    """The URL and host of a request as this cycle's evidence supports them: a TFTP/FTP
    request (which carries no name) keeps a host name only when this cycle looked it up."""
    if r.protocol in ("tftp", "ftp") and r.server_ip and r.host != r.server_ip \
            and not _named_in_cycle(r, lookups):
        return build_url(r.protocol, r.server_ip, r.server_port, r.path), r.server_ip
    return r.url, r.host


def observed(records: Sequence[Any]) -> tuple[list[Observed], list[Observed]]:
    """File requests and DNS look-ups of one cycle, by the time each request arrived (a
    service appends a record when its transfer ends, so append order is not request
    order)."""
    ordered = sorted(records, key=lambda r: r.time)
    lookups = [r for r in ordered if r.protocol == "dns" and r.outcome == "served"]
    files = [Observed(r.time, r.protocol, *_as_sent(r, lookups), r.outcome, r.method,
                      _size(r))
             for r in ordered if r.protocol in FILE_PROTOCOLS and is_file_request(r)]
    dns = [Observed(r.time, "dns", None, r.host, r.outcome, r.method, _size(r))
           for r in ordered if r.protocol == "dns"]
    return files, dns


def _size(record: Any) -> int | None:
    """The bytes a service sent for a request record, when it counted them."""
    size = getattr(record, "bytes_sent", None)
    return size if isinstance(size, int) else None


@dataclass
class Cycle:
    """One DHCP cycle of a case: its ACK and the phone's requests until the next one."""

    ack_at: float
    records: list[Any] = field(default_factory=list)


@dataclass
class CaseWindow:
    """What a case heard from its phone, from its first ACK until its verdict (``closed``)."""

    trigger_at: float
    cycles: list[Cycle] = field(default_factory=list)
    closed_at: float | None = None
    #: the phone said (console hint) that its last cycle was over before the verdict
    done: bool = False

    @property
    def opened_at(self) -> float:
        return self.cycles[0].ack_at if self.cycles else self.trigger_at

    def counted(self) -> set[int]:
        return {id(r) for c in self.cycles for r in c.records}


class CaseListener:
    """Listens to one phone for one case: its DHCP cycles and its requests.

    ``log`` is the lab's RequestLog, ``dhcp`` the lab DHCP server (transcript and
    ``wait_for``), ``restarts`` an optional console watch (``callback -> unwatch``) that
    fires when the phone's console shows it rebooting.
    """

    def __init__(self, log: Any, dhcp: Any, spec: PhoneSpec, *, settle_s: float,
                 request_timeout_s: float, boot_timeout_s: float, max_cycles: int = 3,
                 restarts: Callable[[Callable[[], None]], Callable[[], None] | None] | None
                 = None) -> None:
        self.log = log
        self.dhcp = dhcp
        self.spec = spec
        self.mine = phone_matcher(spec)
        self.settle_s = settle_s
        self.request_timeout_s = request_timeout_s
        self.boot_timeout_s = boot_timeout_s
        self.max_cycles = max_cycles
        self._restarts = restarts
        self._starts: list[float] = []  # when the phone began a DHCP cycle (transcript)
        self._restarts_seen: list[float] = []  # when a restart banner was read (console)
        self._changed = threading.Event()
        self._stops: list[Callable[[], None]] = []

    # --- boundaries --------------------------------------------------------------------

    def await_ack(self, since: float) -> float:
        """The time of the phone's next new-lease ACK after ``since`` (a RigFault with what
        DHCP saw when none comes within the boot timeout)."""
        deadline = time.monotonic() + self.boot_timeout_s
        mac = self.spec.mac_colon
        while True:
            try:
                rec = self.dhcp.wait_for(mac, "ACK", since=since,
                                         timeout=max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                seen = [m for m in self.dhcp.transcript(mac) if m.time >= since]
                what = ", ".join(sorted({m.message_type for m in seen})) or "nothing"
                raise RigFault(f"no DHCP lease for {self.spec.name} ({mac}) within "
                               f"{self.boot_timeout_s:g} s; DHCP saw {what} from it") from None
            if new_lease(rec):
                return float(rec.time)
            since = float(rec.time) + 1e-6  # a renewal's ACK: the cycle has not begun

    # --- listening ---------------------------------------------------------------------

    def __enter__(self) -> CaseListener:
        def began(into: list[float], at: float) -> None:
            into.append(at)
            self._changed.set()
            self.log.wake()

        def on_dhcp(m: Any) -> None:
            if m.mac.lower() == self.spec.mac_colon.lower() and starts_cycle(m):
                began(self._starts, float(m.time))

        self._stops.append(self.dhcp.subscribe(on_dhcp))
        if self._restarts is not None:
            stop = self._restarts(lambda: began(self._restarts_seen, time.time()))
            if stop is not None:
                self._stops.append(stop)
        return self

    def _began_after(self, ack: float, window: CaseWindow) -> float | None:
        """When the phone began a new cycle after the lease of ``ack``, if it did.

        A DHCP DISCOVER (or INIT REQUEST) after that ACK says so exactly (the transcript
        stamps what it saw). A restart banner on the console says so early (a real phone
        takes a minute to boot) but late-stamped: it is stamped when it is read, and a
        loaded console delivers it after the phone already asked for its new lease. So
        banners are counted, not timed: each restart prints one, so the case has a
        restart not yet followed when it has read more banners (since the phone's first
        request in the case) than it has followed restarts."""
        dhcp = next((t for t in list(self._starts) if t > ack), None)
        if dhcp is not None:
            return dhcp
        first = min((r.time for r in self._records(window)), default=None)
        if first is None:
            return None
        banners = [t for t in list(self._restarts_seen) if t > first]
        followed = len(window.cycles) - 1
        return banners[followed] if len(banners) > followed else None

    def __exit__(self, *exc: object) -> None:
        for stop in self._stops:
            stop()
        self._stops.clear()

    def listen(self, window: CaseWindow, wanted: int, first_ack: float, *,
               finished: threading.Event | None = None,
               on_settle: Callable[[set[str]], None] | None = None) -> None:
        """Fill ``window`` with the case's cycles: ``wanted`` file requests per cycle (or
        fewer when the request timeout runs out or ``finished`` is set), then quiet for
        the settle window; a new DHCP cycle meanwhile is followed (up to ``max_cycles``).
        ``on_settle(protocols seen)`` runs once the phone is quiet (the rig health check:
        a phone may restart on its own until then, and a console check that meets a
        restart proves nothing about the rig)."""
        ack = first_ack
        checked = False
        while True:
            cycle = Cycle(ack)
            window.cycles.append(cycle)
            if finished is not None and len(window.cycles) > 1:
                finished.clear()  # the console's end-of-cycle word is per cycle
            self._await_files(cycle, wanted, finished)
            began = self._settle(window, ack)
            # The phone has been quiet for the settle window: its cycle is over now. What it
            # asks for from here on is late (the lab's convention), however long the health
            # check below takes: a slow check must not pull a late request into the window.
            quiet_at = time.time() if began is None else None
            if began is None and on_settle is not None:
                self._assign(window, quiet_at)
                on_settle({r.protocol for c in window.cycles for r in c.records})
                checked = True
                # The health check went through the console: what the phone printed before
                # its answer has been read now. A restart banner it brought in (a console
                # slower than the settle window) means the phone was not quiet: follow
                # that cycle, and check the rig again when the phone is quiet.
                began = self._began_after(ack, window)
            if began is None or len(window.cycles) >= self.max_cycles:
                break
            checked = False
            ack = self.await_ack(ack + 1e-6)  # the next new lease, however late we heard
        self._assign(window, quiet_at)
        if on_settle is not None and not checked:
            on_settle({r.protocol for c in window.cycles for r in c.records})
        window.closed_at = time.time()
        window.done = finished is not None and finished.is_set()

    def _records(self, window: CaseWindow, until: float | None = None) -> list[Any]:
        return [r for r in self.log.records(since=window.opened_at) if self.mine(r)
                and (until is None or r.time < until)]

    def _await_files(self, cycle: Cycle, wanted: int, finished: threading.Event | None
                     ) -> None:
        # Counted by identity, not by time: a service appends a record when its transfer
        # ends, so a request made earlier can be logged after a later one.
        counted: set[int] = set()
        deadline = time.monotonic() + self.request_timeout_s
        while len(counted) < wanted and time.monotonic() < deadline:
            try:
                rec = self.log.wait_for(
                    lambda r: id(r) not in counted and self.mine(r)
                    and r.protocol in FILE_PROTOCOLS and is_file_request(r),
                    timeout=max(0.0, deadline - time.monotonic()),
                    what=f"file requests from {self.spec.name}", since=cycle.ack_at,
                    stop=finished)
            except TimeoutError:
                break
            counted.add(id(rec))

    def _settle(self, window: CaseWindow, ack: float) -> float | None:
        """Listen until the phone is quiet for the settle window; when it began a new
        DHCP cycle meanwhile (or before), when it did (the caller follows it)."""
        heard = {id(r) for r in self._records(window)}
        while True:
            self._changed.clear()
            began = self._began_after(ack, window)
            if began is not None:
                return began
            try:
                rec = self.log.wait_for(lambda r: id(r) not in heard and self.mine(r),
                                        timeout=self.settle_s, what="quiet",
                                        since=window.opened_at, stop=self._changed)
                heard.add(id(rec))
            except TimeoutError:
                if not self._changed.is_set():
                    return self._began_after(ack, window)

    def _assign(self, window: CaseWindow, until: float | None = None) -> None:
        """Each record of the window made before ``until`` (when the phone fell quiet) into
        its cycle (by the ACK that precedes it)."""
        records = self._records(window, until)
        for i, cycle in enumerate(window.cycles):
            end = window.cycles[i + 1].ack_at if i + 1 < len(window.cycles) else float("inf")
            cycle.records = [r for r in records if cycle.ack_at <= r.time < end]

    def late(self, window: CaseWindow, until: float) -> list[Any]:
        """The phone's requests after ``window``'s verdict and before ``until`` (the next
        case's ACK), by the time they were made: late requests of that case."""
        counted = window.counted()
        return sorted((r for r in self._records(window, until) if id(r) not in counted),
                      key=lambda r: r.time)


def offset_dicts(items: Sequence[Observed], trigger_at: float) -> list[dict[str, Any]]:
    """Observed requests as the record shows them, each with its offset from the trigger."""
    return [{**o.to_dict(), "offset_s": round(o.time - trigger_at, 3)} for o in items]


def judge_cycles(expected: Any, window: CaseWindow, *, mac: str, interp: Any,
                 model: str = "") -> Judgement:
    """The case's verdict over every DHCP cycle it saw: each cycle is judged against the
    same expectation (the phone had the same options); the worst one decides."""
    judgements = []
    for cycle in window.cycles:
        files, dns = observed(cycle.records)
        judgements.append(judge(expected, files, dns, mac=mac, interp=interp, model=model))
    if len(judgements) == 1:
        return judgements[0]
    n = len(judgements)
    restarts = ", ".join(f"+{c.ack_at - window.trigger_at:.1f} s" for c in window.cycles[1:])
    where = f"{n} DHCP cycles (the phone started again on its own, new lease at {restarts})"
    wrong = [(k, j) for k, j in enumerate(judgements, 1) if not j.matches]
    diffs = tuple(f"cycle {k}: {d}" for k, j in wrong for d in j.differences)
    notes = tuple(f"cycle {k}: {n}" for k, j in enumerate(judgements, 1) for n in j.notes)
    # the assertions shown are those of the cycle that decides (the first one that differs)
    shown_assertions = (wrong[0][1] if wrong else judgements[0]).assertions
    if any(j.verdict is Verdict.FAILED for j in judgements):
        failed = next(j for j in judgements if j.verdict is Verdict.FAILED)
        return Judgement(Verdict.FAILED, f"{where}; " + "; ".join(
            f"cycle {k}: {j.reason}" for k, j in wrong), diffs, False, failed.assertions,
            notes)
    if all(j.verdict is Verdict.OBSERVED for j in judgements):
        shown = [(k, j) for k, j in enumerate(judgements, 1) if not j.matches] or \
            [(1, judgements[0])]
        return Judgement(Verdict.OBSERVED, f"{where}; " + "; ".join(
            f"cycle {k}: {j.reason}" for k, j in shown), diffs, not wrong, shown_assertions,
            notes)
    return Judgement(Verdict.PASSED, f"{where}; in each: {judgements[0].reason}", diffs,
                     not wrong, shown_assertions, notes)


def amend_late(entry: CaseResult, expected: Any, window: CaseWindow, late: Sequence[Any],
               *, mac: str, interp: Any, settle_s: float, model: str = "") -> CaseResult:
    """The case result amended by its late requests (made after the phone had been quiet
    for the settle window and the verdict was given, before the next case's ACK).

    The late requests join the last cycle's requests and the case is judged again, so a
    late request the manual's assertions forbid (another file, another server) fails a
    promised case on their ground. That a cycle ends when the phone falls quiet is our
    convention, not a manual sentence (ground ``late``, kind lab): a late *repeat* of an
    expected URL fails the case only when the profile judges lab grounds (``--switch
    judged_grounds=manual,field,lab``); otherwise it is recorded and said, not judged. An
    unpromised case stays *observed* and a broken one *broken*; both say what came late."""
    files, dns = observed(late)
    late_seen = [ObservedRequest.from_json(d, where=f"case {entry.id}")
                 for d in offset_dicts(files + dns, window.trigger_at)]
    said = ", ".join(f"{o.url or 'DNS query for ' + str(o.host)} at "
                     f"+{o.offset_s or 0.0:.1f} s after the trigger" for o in late_seen)
    update: dict[str, Any] = {
        "late": late_seen,
        "observed": sorted([*entry.observed, *late_seen], key=lambda o: o.time)}
    head = (f"late request{'s' if len(late_seen) > 1 else ''} {said} (after the phone had "
            f"been quiet for {settle_s:g} s and its verdict was given)")
    if entry.verdict in (Verdict.BROKEN.value, Verdict.SKIPPED.value) \
            or expected is None or not window.cycles:
        return entry.amended(**update, reason=f"{entry.reason}; {head}")
    last = window.cycles[-1]
    joined = Cycle(last.ack_at, [*last.records, *late])
    again = judge_cycles(expected, CaseWindow(window.trigger_at, [*window.cycles[:-1], joined],
                                              window.closed_at), mac=mac, interp=interp,
                         model=model)
    lateness = late_assertion(expected, interp)
    differences = [f"late: {o.url or o.host} at +{o.offset_s or 0.0:.1f} s" for o in late_seen]
    update.update(differences=[*differences, *again.differences], matches_core=False)
    if entry.assertions is not None:  # the assertions as judged again with the late ones
        kept = [a for a in entry.assertions if a.id.startswith("identification/")]
        update.update(assertions=[*again.assertions,
                                  {**lateness.to_dict(), "holds": False, "detail": said},
                                  *kept], notes=list(again.notes))
    fails = again.verdict is Verdict.FAILED or lateness.judged
    if entry.verdict == Verdict.OBSERVED.value or not fails:
        unjudged = "" if entry.verdict == Verdict.OBSERVED.value else (
            f" (ground: {lateness.ground.kind}, {lateness.ground.quote} Recorded, not judged: "
            "switch judged_grounds)")
        return entry.amended(**update, reason=f"{entry.reason}; {head}{unjudged}")
    rest = again.reason if again.verdict is not Verdict.PASSED else \
        f"before it: {entry.reason}"
    return entry.amended(**update, verdict=Verdict.FAILED.value, reason=f"{head}; {rest}")


def dhcp_events(transcript: Sequence[Any], since: float) -> list[dict[str, Any]]:
    """A phone's DHCP messages from ``since`` on, as the record keeps them for the
    report's timeline: type, time and direction (``received``: the phone sent it)."""
    return [{"type": m.message_type, "time": m.time, "direction": m.direction}
            for m in transcript if m.time >= since - 0.001]
