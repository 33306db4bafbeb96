"""`hil rig survey`: first contact with a bench, measuring what its phones actually do.

Per phone, read-only: (1) log in over each configured console and record prompts,
``/etc/release``, MAC and ``uname -a`` (framework.runner.survey_console), proposing the
dialect patterns that match; (2) try each control path (SIP check-sync, web reboot, shell
reboot, PDU power cycle) ``reps`` times, each proven on the wire by the DHCP cycle and the
provisioning request that follow, timing trigger -> first DHCP DISCOVER/REQUEST and
trigger -> last provisioning request; (3) the phone's DHCP identity (options 55, 60, 61,
77) and its request pattern; (4) whether it fetches the configuration file the lab serves
(the settings cycle's file, framework.runner.settings) and restarts after it.

The lab (DHCP server, services, the sim when the rig is simulated) is brought up as a run
does (framework.runner.stack, framework.runner.simproc). Every wait is on an event: the DHCP
transcript and the request log (framework.runner.cycle.CaseListener).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import logging
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework import resources
from framework.errors import RigFault, first_line
from framework.rig import PhoneSpec, Rig
from framework.rig.interfaces import TRIGGERS
from framework.runner.cycle import CaseListener, CaseWindow, is_file_request
from framework.runner.settings import RANDOM_TIME, SETTINGS_DIR, settings_file, settings_options
from framework.runner.simproc import SimProcess
from framework.runner.stack import LabStack, StackConfig, bench_filter
from framework.runner.survey_console import ConsoleFinding, probe_console, propose_dialect

CONSOLE_KINDS = ("serial", "telnet", "ssh")
SIM_OFF_TIME_S = 0.5  # a power cycle's off time on the sim (a real supply: 3 s to drain)

log = logging.getLogger(__name__)


@dataclass
class PathFinding:
    """One control path tried ``reps`` times."""

    trigger: str
    works: bool = False
    error: str | None = None
    to_dhcp_s: list[float] = field(default_factory=list)
    to_last_request_s: list[float] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"trigger": self.trigger, "works": self.works, "error": self.error,
                "to_dhcp_s": _stats(self.to_dhcp_s),
                "to_last_request_s": _stats(self.to_last_request_s)}


def _stats(values: Sequence[float]) -> dict[str, Any] | None:
    if not values:
        return None
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3), "samples": [round(v, 3) for v in values]}


@dataclass
class PhoneSurvey:
    """Everything measured on one phone; ``problems`` make the survey fail (exit 1)."""

    name: str
    consoles: list[ConsoleFinding] = field(default_factory=list)
    dialect: dict[str, Any] = field(default_factory=dict)
    paths: list[PathFinding] = field(default_factory=list)
    identity: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": not self.problems, "problems": self.problems,
                "consoles": [c.as_json() for c in self.consoles], "dialect": self.dialect,
                "control_paths": [p.as_json() for p in self.paths],
                "identity": self.identity, "settings": self.settings,
                "sim_expected": self.expected}


@dataclass
class Survey:
    run_id: str
    rig: str
    run_dir: Path
    phones: list[PhoneSurvey] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and all(not p.problems for p in self.phones)

    def as_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "rig": self.rig, "ok": self.ok, "error": self.error,
                "phones": [p.as_json() for p in self.phones]}


@dataclass(frozen=True)
class Timing:
    settle_s: float
    request_timeout_s: float
    boot_timeout_s: float
    random_time: int


def _timing(rig: Rig) -> Timing:
    t, sim = rig.bench.timings, rig.sim is not None
    return Timing(settle_s=t.settle_s if t.settle_s is not None else (0.6 if sim else 3.0),
                  request_timeout_s=t.request_timeout_s or (4.0 if sim else 30.0),
                  boot_timeout_s=t.boot_timeout_s or (60.0 if sim else 240.0),
                  random_time=t.random_provisioning_time or 0)


def new_run_id(rig: Rig) -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + f"-survey-{rig.name}"


def run_survey(rig: Rig, rig_path: Path, *, phones: Sequence[str] = (), reps: int = 3,
               reports_dir: Path = resources.DEFAULT_REPORTS, timeout: float = 10.0
               ) -> Survey:
    """Survey the selected phones (all by default) of ``rig``; never raises a rig fault:
    what went wrong is in the returned :class:`Survey`."""
    run_id = new_run_id(rig)
    survey = Survey(run_id, rig.name, reports_dir / run_id)
    survey.run_dir.mkdir(parents=True, exist_ok=True)
    specs = [p for p in rig.phones if not phones or p.name in phones]
    unknown = sorted(set(phones) - {p.name for p in rig.phones})
    if unknown:
        survey.error = f"--phones: no phone named {unknown[0]!r} in {rig_path}"
        return survey
    sim = SimProcess(rig_path)
    stack = LabStack(_stack_config(rig, specs, survey.run_dir))
    try:
        if rig.sim is not None:
            sim.up()
        stack.start()
        threads = []
        for spec in specs:
            found = PhoneSurvey(spec.name)
            survey.phones.append(found)
            t = threading.Thread(target=_survey_phone, name=f"survey {spec.name}",
                                 args=(rig, spec, stack, found, survey.run_dir, reps, timeout),
                                 daemon=True)
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
    except RigFault as exc:
        survey.error = str(exc)
    finally:
        stack.stop()
        with contextlib.suppress(Exception):
            sim.down()
    return survey


def _stack_config(rig: Rig, specs: Sequence[PhoneSpec], run_dir: Path) -> StackConfig:
    from framework.runner.catalogue import LAB_DNS_NAME
    from framework.runner.session import LAB_STATE_DIR

    lab = rig.lab
    ip = str(lab.address.ip)
    return StackConfig(
        interface=lab.interface,
        address=ipaddress.IPv4Interface(f"{lab.address.ip}/{lab.network.prefixlen}"),
        pool=(str(lab.pool.start), str(lab.pool.end)),
        macs=tuple(s.mac_colon for s in specs),
        fixed={s.mac_colon: str(s.address) for s in specs},
        names={LAB_DNS_NAME: ip, **{k: str(v) for k, v in lab.names.items()}},
        domain=lab.domain, lease_time=lab.lease_time, netns=lab.netns,
        state_dir=LAB_STATE_DIR, requests_jsonl=run_dir / "requests.jsonl",
        probe_window_s=1.0 if rig.sim is not None else None,
        capture_filter=bench_filter(str(getattr(p, "host", "") or "") for p in rig.pdus))


def _survey_phone(rig: Rig, spec: PhoneSpec, stack: LabStack, found: PhoneSurvey,
                  run_dir: Path, reps: int, timeout: float) -> None:
    """One phone's survey, in its own thread: whatever stops it (an unset password
    variable, a bug) is one of the phone's problems, so the survey cannot pass, and write,
    a phone it did not finish."""
    try:
        _survey_one(rig, spec, stack, found, run_dir, reps, timeout)
    except Exception as exc:
        log.exception("survey of %s stopped", spec.name)
        found.problems.append(f"{spec.name}: the survey stopped: {type(exc).__name__}: "
                              f"{first_line(exc)}")


def _survey_one(rig: Rig, spec: PhoneSpec, stack: LabStack, found: PhoneSurvey,
                run_dir: Path, reps: int, timeout: float) -> None:
    log_dir = run_dir / "consoles"
    kinds = [k for k in CONSOLE_KINDS if getattr(spec.console, k, None) is not None]
    found.consoles = [probe_console(spec, k, log_dir, timeout) for k in kinds]
    found.problems += [f"{spec.name}: {c.error}" for c in found.consoles if c.error]
    found.dialect = propose_dialect(spec, found.consoles)
    found.expected = _sim_expected(rig, spec)
    if "error" in found.dialect:
        found.problems.append(f"{spec.name}: {found.dialect['error']}")
    if found.problems:
        return
    surveyed = _with_dialect(spec, found.dialect)
    for how in TRIGGERS:  # a driver per path: one that failed latches the driver broken
        try:
            link = _open_link(rig, surveyed, stack, log_dir)
        except RigFault as exc:
            found.paths.append(PathFinding(how, error=str(exc).splitlines()[0]))
            continue
        try:
            found.paths.append(_measure(rig, surveyed, link, stack, how, reps, found))
        finally:
            link.close()
    wanted = rig.bench.trigger
    path = next((p for p in found.paths if p.trigger == wanted), None)
    if path is not None and not path.works:
        found.problems.append(f"{spec.name}: the rig's trigger {wanted} does not work on "
                              f"this phone: {path.error}")
    if not any(p.works for p in found.paths):
        found.problems.append(f"{spec.name}: no control path works")


def _with_dialect(spec: PhoneSpec, dialect: dict[str, Any]) -> PhoneSpec:
    from framework.rig.shell import ReleaseFields, ShellSpec

    shell = ShellSpec(prompt=dialect["prompt"], login_prompt=dialect.get("login_prompt"),
                      release_fields=ReleaseFields(**dialect["release_fields"]),
                      mac_commands=dialect.get("mac_commands"),
                      provisioning_done=spec.shell.provisioning_done if spec.shell else None)
    return spec.model_copy(update={"shell": shell})


def _open_link(rig: Rig, spec: PhoneSpec, stack: LabStack, log_dir: Path) -> Any:
    from framework.console import ConsoleError
    from framework.phone import Phone400HD, PhoneError
    from framework.power import PowerError
    from framework.rig import SecretError
    from framework.runner.phones import DriverLink

    faults: tuple[type[BaseException], ...] = (ConsoleError, PhoneError, PowerError,
                                               SecretError, TimeoutError, OSError)
    try:
        driver = Phone400HD.from_rig(rig, spec, log_dir, dhcp=stack.dhcp,
                                     boot_timeout_s=_timing(rig).boot_timeout_s,
                                     off_time_s=SIM_OFF_TIME_S if rig.sim is not None else 3.0)
    except faults as exc:
        raise RigFault(str(exc)) from None
    return DriverLink(driver, faults)


def _measure(rig: Rig, spec: PhoneSpec, link: Any, stack: LabStack, how: str, reps: int,
             found: PhoneSurvey) -> PathFinding:
    """``how`` ``reps`` times, each with the lab's settings file served (options 160/224):
    the DHCP cycle and the file fetch that follow prove the path on the wire."""
    t = _timing(rig)
    lab_ip = str(rig.lab.address.ip)
    path = f"{SETTINGS_DIR}/{spec.mac}/settings.cfg"
    stack.services.content.serve(path, settings_file(spec.model, {RANDOM_TIME: str(t.random_time)}))
    stack.dhcp.set_options(spec.mac_colon, settings_options(lab_ip, spec))
    result = PathFinding(how)
    for _ in range(reps):
        listener = CaseListener(stack.services.log, stack.dhcp, spec, settle_s=t.settle_s,
                                request_timeout_s=t.request_timeout_s,
                                boot_timeout_s=t.boot_timeout_s, restarts=link.watch_restart)
        try:
            with listener:
                trigger_at = time.time()
                link.trigger(how)
                ack_at = listener.await_ack(trigger_at)
                window = CaseWindow(trigger_at)
                listener.listen(window, 1, ack_at)
        except RigFault as exc:
            result.error = str(exc).splitlines()[0]
            return result
        transcript = [m for m in stack.dhcp.transcript(spec.mac_colon)
                      if m.time >= trigger_at and m.direction == "received"]
        files = [r for c in window.cycles for r in c.records if is_file_request(r)]
        if not transcript or not files:
            result.error = ("no provisioning request followed" if transcript
                            else "no DHCP message followed")
            return result
        result.to_dhcp_s.append(transcript[0].time - trigger_at)
        result.to_last_request_s.append(max(r.time for r in files) - trigger_at)
        if not found.identity:
            found.identity = _identity(transcript, files)
            fetched = [r for r in files if r.path.split("?", 1)[0] == path
                       and r.outcome == "served"]
            found.settings = {"file": path, "setting": f"{RANDOM_TIME}={t.random_time}",
                              "fetched": bool(fetched), "restarted_after": len(window.cycles) > 1,
                              "cycles": len(window.cycles)}
    result.works = True
    return result


def _identity(transcript: Sequence[Any], files: Sequence[Any]) -> dict[str, Any]:
    """Options 55, 60, 61, 77 of the first DISCOVER (else REQUEST) of a cycle, and the
    requests (protocol, path, User-Agent) of that cycle."""
    first = next((m for m in transcript if m.message_type == "DISCOVER"), transcript[0])

    def text(code: int) -> str | None:
        raw = first.options.get(code)
        if raw is None:
            return None
        raw = bytes(raw)
        return raw.decode("ascii") if raw.isascii() and raw.decode().isprintable() \
            else raw.hex(":")

    return {"message": first.message_type, "option_55": list(first.parameter_list),
            "option_60": text(60), "option_61": text(61), "option_77": text(77),
            "requests": [f"{r.protocol} {r.path}" for r in files],
            "user_agents": sorted({r.user_agent for r in files if r.user_agent})}


def _sim_expected(rig: Rig, spec: PhoneSpec) -> dict[str, Any]:
    """What the sim section says each trigger takes to the phone's first DHCP message:
    a boot (``boot_time_s`` times ``time_scale``; a power cycle adds the outlet's off time),
    none for check-sync. Empty on a real bench."""
    if rig.sim is None:
        return {}
    sim = rig.sim
    own = (sim.get("phones") or {}).get(spec.name) or {}
    boot = float(own.get("boot_time_s", sim.get("boot_time_s", 0.3))) * \
        float(sim.get("time_scale", 1.0))
    return {"boot_time_s": round(boot, 3),
            "to_dhcp_s": {"check-sync": 0.0, "web-reboot": round(boot, 3),
                          "shell-reboot": round(boot, 3),
                          "power-cycle": round(boot + SIM_OFF_TIME_S, 3)}}
