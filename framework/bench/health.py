"""Is every PDU, console and phone of a bench usable, without changing it? (`hil rig check`)

For each PDU: every outlet the rig uses must be readable (which also proves the PDU is
reachable and the community right). For each phone: each configured console opens, the
login works, and ``/etc/release`` matches the rig's model, MAC and firmware. Nothing is
switched: a phone whose outlet is off is reported, not powered on. Lab I/O happens in the
rig's ``lab.netns`` when it names one (the simulated bench), as for a test run.

A phone without a DHCP lease never reaches its login prompt (docs/CONTRACTS.md: boot,
DHCP, provisioning, then ``MODEL login:``), so by default the check serves DHCP on the lab
interface while it runs: only the rig's MACs, each its fixed address, no provisioning
options (ARCHITECTURE.md, "Safety"). ``dhcp=False`` leaves DHCP to a server already there.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from rich.console import Console as RichConsole
from rich.markup import escape
from rich.table import Table

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


@dataclass(frozen=True)
class HealthReport:
    """Every check of one bench; healthy when nothing failed (warnings allowed)."""

    rig: str
    items: tuple[HealthItem, ...]
    log_dir: Path

    @property
    def healthy(self) -> bool:
        return self.unhealthy_count == 0

    @property
    def unhealthy_count(self) -> int:
        return sum(item.level == "fail" for item in self.items)


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if "\n" not in text else text.split("\n", 1)[0] + " (see the console log)"


def _check_pdus(rig: Rig) -> list[HealthItem]:
    from framework.power import PowerError, PowerStateUnreadable, power_switch

    items = []
    for pdu in rig.pdus:
        users = {p.power.outlet: p.name for p in rig.phones if p.power.pdu == pdu.name}
        for outlet in sorted(users):
            device, check = f"PDU {pdu.name}", f"outlet {outlet} ({users[outlet]})"
            try:
                on = power_switch(pdu, outlet).state()
            except PowerStateUnreadable as exc:
                items.append(HealthItem(device, check, "warn", exc.reason))
            except (PowerError, SecretError) as exc:
                items.append(HealthItem(device, check, "fail", _first_line(exc)))
            else:
                items.append(HealthItem(device, check, "ok", "on" if on else "off"))
    return items


def _check_phone(rig: Rig, phone: PhoneSpec, log_dir: Path, timeout: float
                 ) -> list[HealthItem]:
    from framework.console import console_for
    from framework.phone import Phone400HD, PhoneBroken, PhoneError
    from framework.power import power_switch

    device = f"phone {phone.name}"
    items = []
    kinds = [k for k, spec in (("serial", phone.console.serial), ("ssh", phone.console.ssh))
             if spec is not None]
    power = power_switch(rig.pdu(phone.power.pdu), phone.power.outlet)
    for kind in kinds:
        driver = Phone400HD(phone, power, lambda k: console_for(phone, k, log_dir), None,
                            command_timeout_s=timeout, console_kind=kind, auto_power=False)
        try:
            release = driver.verify_identity()
        except PhoneBroken as exc:
            cause = exc.cause
            what = "identity" if type(cause).__name__ == "IdentityMismatch" else "login"
            items.append(HealthItem(device, f"{kind} console, {what}", "fail",
                                    _first_line(cause or exc)))
        except (PhoneError, SecretError) as exc:
            items.append(HealthItem(device, f"{kind} console", "fail", _first_line(exc)))
        else:
            items.append(HealthItem(device, f"{kind} console, login, /etc/release", "ok",
                                    f"{release.model} {release.mac} firmware {release.version}"))
        finally:
            driver.close()
    return items


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


def check_bench(rig: Rig, *, log_dir: Path | None = None, timeout: float = 15.0,
                dhcp: bool = True) -> HealthReport:
    """Check every PDU outlet in use and every phone console of ``rig``.

    ``timeout`` bounds each console step (a phone still getting its lease gets that long
    to show a prompt).
    """
    log_dir = log_dir or Path("reports") / "rig-check" / datetime.now().strftime("%Y%m%d-%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    items: list[HealthItem] = []
    try:
        with _lab_side(rig), (_lab_dhcp(rig, items) if dhcp else contextlib.nullcontext()):
            items += _check_pdus(rig)
            for phone in rig.phones:
                items += _check_phone(rig, phone, log_dir, timeout)
    except NamespaceError as exc:
        hint = " (is the simulated bench up? `hil sim up`)" if rig.sim is not None else ""
        items.append(HealthItem(f"lab {rig.lab.netns}", "network namespace", "fail",
                                f"{exc}{hint}"))
    return HealthReport(rig.name, tuple(items), log_dir)


_STYLE = {"ok": "green", "warn": "yellow", "fail": "bold red"}


def render_report(report: HealthReport, console: RichConsole | None = None) -> None:
    """The report as a table; a summary line says healthy or how many checks failed."""
    out = console or RichConsole()
    table = Table(title=f"rig {report.rig}: health", title_justify="left")
    for column in ("device", "check", "status", "detail"):
        table.add_column(column, overflow="fold")
    for item in report.items:
        table.add_row(escape(item.device), escape(item.check),
                      f"[{_STYLE[item.level]}]{item.level}[/]", escape(item.detail))
    out.print(table)
    verdict = "healthy" if report.healthy else f"UNHEALTHY: {report.unhealthy_count} failed"
    out.print(escape(f"{verdict}; console logs in {report.log_dir}"))
