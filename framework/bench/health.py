"""Is every PDU, console and phone of a bench usable, without changing it? (`hil rig check`)

For each PDU: every outlet the rig uses must be readable (which also proves the PDU is
reachable and the community or SNMPv3 user right). For each phone: each configured console
opens, the login works, and ``/etc/release`` matches the rig's model, MAC and firmware.
Nothing is switched: a phone whose outlet is off is reported, not powered on. Lab I/O
happens in the rig's ``lab.netns`` when it names one (the simulated bench), as for a test run.

Every PDU and every phone console is checked at once, each in its own thread, and the whole
check is bounded by ``deadline`` seconds: a host that does not answer costs the deadline at
most, not its sum over the bench (a check still waiting then is reported as not answering
and left behind). Any failure is one line: no library traceback reaches the user.

A phone without a DHCP lease never reaches its login prompt (docs/CONTRACTS.md: boot,
DHCP, provisioning, then ``MODEL login:``), so by default the check serves DHCP on the lab
interface while it runs: only the rig's MACs, each its fixed address, no provisioning
options (ARCHITECTURE.md, "Safety"). ``dhcp=False`` leaves DHCP to a server already there.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from rich.console import Console as RichConsole
from rich.markup import escape

from framework.netns import NamespaceError, Netns
from framework.rig.model import PhoneSpec, Rig
from framework.rig.secrets import SecretError

Level = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class HealthItem:
    """One check: which device, what was checked, the outcome and what was seen."""

    device: str
    check: str
    level: Level
    detail: str
    seconds: float = 0.0

    def as_json(self) -> dict[str, object]:
        return {"name": self.check, "target": self.device, "ok": self.level != "fail",
                "level": self.level, "detail": self.detail, "seconds": round(self.seconds, 2)}


@dataclass(frozen=True)
class HealthReport:
    """Every check of one bench; healthy when nothing failed (warnings allowed)."""

    rig: str
    items: tuple[HealthItem, ...]
    log_dir: Path
    seconds: float = 0.0

    @property
    def healthy(self) -> bool:
        return self.unhealthy_count == 0

    @property
    def unhealthy_count(self) -> int:
        return sum(item.level == "fail" for item in self.items)

    def as_json(self) -> dict[str, object]:
        """One object: the rig, the verdict, and every check (name, target, ok, detail,
        seconds)."""
        return {"rig": self.rig, "healthy": self.healthy, "failed": self.unhealthy_count,
                "seconds": round(self.seconds, 2), "log_dir": str(self.log_dir),
                "checks": [item.as_json() for item in self.items]}


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if "\n" not in text else text.split("\n", 1)[0] + " (see the console log)"


@dataclass
class _Task:
    """One check running in its own thread: what it is, what it found so far."""

    device: str
    check: str
    body: Callable[[_Task], None]
    items: list[HealthItem] = field(default_factory=list)
    started: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)

    def add(self, check: str, level: Level, detail: str) -> None:
        self.items.append(HealthItem(self.device, check, level, detail,
                                     time.monotonic() - self.started))

    def run(self) -> None:
        self.started = time.monotonic()
        try:
            self.body(self)
        except Exception as exc:  # anything a library raises is one line, never a traceback
            self.add(self.check, "fail", f"{type(exc).__name__}: {_first_line(exc)}")
        finally:
            self.done.set()


def _pdu_task(rig: Rig, pdu_name: str) -> _Task:
    """Every outlet of one PDU that the rig uses (one thread: the PDU serialises commands).
    A PDU that does not answer at all is one problem, not one per outlet."""
    from framework.power import PowerError, PowerStateUnreadable, power_switch

    pdu = rig.pdu(pdu_name)
    users = {p.power.outlet: p.name for p in rig.phones if p.power.pdu == pdu.name}
    outlets = ("outlets " if len(users) > 1 else "outlet ") + ", ".join(
        f"{o} ({users[o]})" for o in sorted(users))

    def body(task: _Task) -> None:
        for outlet in sorted(users):
            check = f"outlet {outlet} ({users[outlet]})"
            try:
                on = power_switch(pdu, outlet).state()
            except PowerStateUnreadable as exc:
                task.add(check, "warn", exc.reason)
            except PowerError as exc:
                if exc.unanswered:
                    task.add(outlets, "fail", _first_line(exc))
                    return  # no answer at all: the other outlets cannot answer either
                task.add(check, "fail", _first_line(exc))
            except SecretError as exc:
                task.add(outlets, "fail", _first_line(exc))
                return
            else:
                task.add(check, "ok", "on" if on else "off")

    return _Task(f"PDU {pdu.name}", outlets, body)


def _console_task(rig: Rig, phone: PhoneSpec, kind: str, log_dir: Path,
                  timeout: float) -> _Task:
    """One console of one phone: it opens, the login works, /etc/release matches."""
    from framework.console import console_for
    from framework.phone import Phone400HD, PhoneBroken, PhoneError
    from framework.power import power_switch

    def body(task: _Task) -> None:
        power = power_switch(rig.pdu(phone.power.pdu), phone.power.outlet)
        driver = Phone400HD(phone, power, lambda k: console_for(phone, k, log_dir), None,
                            command_timeout_s=timeout, console_kind=kind, auto_power=False)
        try:
            release = driver.verify_identity()
        except PhoneBroken as exc:
            cause = exc.cause
            what = "identity" if type(cause).__name__ == "IdentityMismatch" else "login"
            task.add(f"{kind} console, {what}", "fail", _first_line(cause or exc))
        except (PhoneError, SecretError) as exc:
            task.add(f"{kind} console", "fail", _first_line(exc))
        else:
            task.add(f"{kind} console, login, /etc/release", "ok",
                     f"{release.model} {release.mac} firmware {release.version}")
        finally:
            driver.close()

    return _Task(f"phone {phone.name}", f"{kind} console", body)


def _phone_task(rig: Rig, phone: PhoneSpec, log_dir: Path, timeout: float) -> _Task:
    """Every console of one phone, one after the other in the drivers' order (phones in
    parallel): the consoles share one phone, and a console that waits for the phone (its
    serial line, while it takes its lease) must not race another that needs its network."""
    consoles = [_console_task(rig, phone, kind, log_dir, timeout)
                for kind in _console_kinds(phone)]

    def body(task: _Task) -> None:
        for console in consoles:
            task.check = console.check  # what a deadline reports as not answering
            try:
                console.body(task)
            except Exception as exc:  # one line, never a traceback; the next console runs
                task.add(console.check, "fail", f"{type(exc).__name__}: {_first_line(exc)}")

    return _Task(f"phone {phone.name}", "consoles", body)


def _console_kinds(phone: PhoneSpec) -> list[str]:
    """The console kinds the rig gives this phone, in the drivers' order."""
    from framework.console import CONSOLE_KINDS

    return [kind for kind in CONSOLE_KINDS if getattr(phone.console, kind, None) is not None]


def _run_tasks(tasks: list[_Task], deadline: float) -> list[HealthItem]:
    """Run every task at once (threads started here inherit the calling thread's network
    namespace); a task not done by ``deadline`` is reported and left behind."""
    end = time.monotonic() + deadline
    for task in tasks:
        threading.Thread(target=task.run, daemon=True,
                         name=f"rig-check {task.device} {task.check}").start()
    items: list[HealthItem] = []
    for task in tasks:
        finished = task.done.wait(max(0.0, end - time.monotonic()))
        items += list(task.items)
        if not finished:
            items.append(HealthItem(task.device, task.check, "fail",
                                    f"no answer within the check's deadline of {deadline:g} s "
                                    f"(unreachable? raise --deadline for a slow bench)",
                                    deadline))
    return items


@contextlib.contextmanager
def _quiet(log_dir: Path) -> Iterator[None]:
    """What the drivers log during the check goes to ``log_dir/rig-check.log`` (the report
    already says each problem once), and a library thread that dies during the check (e.g.
    an SSH transport whose peer went away) is logged in one line, not printed as a
    traceback."""
    import logging

    handler = logging.FileHandler(log_dir / "rig-check.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        thread = args.thread.name if args.thread else "?"
        logging.getLogger(__name__).info("thread %s ended: %s", thread,
                                         _first_line(args.exc_value or Exception("?")))

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous
        logging.getLogger().removeHandler(handler)
        handler.close()


@contextlib.contextmanager
def _lab_side(rig: Rig) -> Iterator[None]:
    if rig.lab.netns is None:
        yield
        return
    with Netns(rig.lab.netns).entered():
        yield


@contextlib.contextmanager
def _lab_dhcp(rig: Rig, items: list[HealthItem]) -> Iterator[None]:
    """Serve the rig's phones their fixed addresses for the duration of the check."""
    from framework.dhcp.server import DhcpServer, DhcpServerError
    from framework.dhcp.settings import ServerSettings

    lab = rig.lab
    server = DhcpServer(ServerSettings.build(
        lab.interface, str(lab.address.ip), netmask=str(lab.network.netmask),
        fixed={p.mac_colon: str(p.address) for p in rig.phones},
        allowlist=[p.mac_colon for p in rig.phones],
        dns=[str(a) for a in lab.dns], domain=lab.domain,
        lease_time=lab.lease_time, netns=lab.netns))
    try:
        server.start()
    except DhcpServerError as exc:
        items.append(HealthItem(f"lab {lab.interface}", "DHCP server", "fail", str(exc)))
        yield
        return
    try:
        yield
    finally:
        server.stop()
        leased = sorted(server.leases())
        items.insert(0, HealthItem(f"lab {lab.interface}", "DHCP server (for the check)",
                                   "ok", f"served the rig's {len(rig.phones)} phones their "
                                   f"fixed addresses; {len(leased)} lease(s) granted during "
                                   f"the check"))


DEFAULT_DEADLINE_S = 8.0


def check_bench(rig: Rig, *, log_dir: Path | None = None, timeout: float = 15.0,
                dhcp: bool = True, deadline: float = DEFAULT_DEADLINE_S) -> HealthReport:
    """Check every PDU outlet in use and every phone console of ``rig``, all at once.

    ``timeout`` bounds each console step; ``deadline`` bounds the whole check (a check
    still waiting then is reported as not answering).
    """
    started = time.monotonic()
    log_dir = log_dir or Path("reports") / "rig-check" / datetime.now().strftime("%Y%m%d-%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    items: list[HealthItem] = []
    try:
        with _lab_side(rig), _quiet(log_dir), \
                (_lab_dhcp(rig, items) if dhcp else contextlib.nullcontext()):
            tasks = [_pdu_task(rig, pdu.name) for pdu in rig.pdus
                     if any(p.power.pdu == pdu.name for p in rig.phones)]
            tasks += [_phone_task(rig, phone, log_dir, min(timeout, deadline))
                      for phone in rig.phones if _console_kinds(phone)]
            items += _run_tasks(tasks, deadline)
    except NamespaceError as exc:
        hint = " (is the simulated bench up? `hil sim up`)" if rig.sim is not None else ""
        items.append(HealthItem(f"lab {rig.lab.netns}", "network namespace", "fail",
                                f"{exc}{hint}"))
    return HealthReport(rig.name, tuple(items), log_dir, time.monotonic() - started)


_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def render_report(report: HealthReport, console: RichConsole | None = None) -> None:
    """One line per check (never wrapped: one line per problem), then a summary line that
    says healthy or how many checks failed."""
    out = console or RichConsole()
    out.print(escape(f"rig {report.rig}: health"), soft_wrap=True)
    for item in report.items:
        out.print(f"[{_STYLE[item.level]}]{item.level:<4}[/] " + escape(
            f"{item.device}: {item.check}: {item.detail} ({item.seconds:.1f} s)"),
            soft_wrap=True)
    verdict = "healthy" if report.healthy else f"UNHEALTHY: {report.unhealthy_count} failed"
    out.print(escape(f"{verdict} in {report.seconds:.1f} s; console logs in {report.log_dir}"),
              soft_wrap=True)
