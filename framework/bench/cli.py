"""`hil rig check`: health-check a bench's PDUs, consoles and phones without changing it.

The command lives here, above the drivers it uses, and framework/cli.py mounts it under
``hil rig`` (``register``): framework.rig stays below console, power and phone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from framework.errors import HilError
from framework.rig.cli import RigOption, load_or_exit


class BenchUnhealthy(click.ClickException, HilError):
    """`hil rig check` found an unhealthy PDU, console or phone: exit code 1."""

    exit_code = 1


def check_command(
    rig: RigOption = Path("rigs/sim.yaml"),
    log_dir: Annotated[Path | None, typer.Option(
        "--log-dir", help="where console logs go (default: reports/rig-check/<time>)")] = None,
    timeout: Annotated[float, typer.Option(help="seconds per console step")] = 15.0,
    dhcp: Annotated[bool, typer.Option(
        "--dhcp/--no-dhcp", help="serve DHCP to the rig's phones during the check "
        "(fixed addresses, no provisioning options)")] = True,
) -> None:
    """Health check: every PDU (reachable, outlet state readable) and phone (console, login,
    /etc/release matches model, MAC and firmware). Exits 1 if anything is unhealthy."""
    from framework.bench.health import check_bench, render_report

    loaded = load_or_exit(rig)
    report = check_bench(loaded, log_dir=log_dir, timeout=timeout, dhcp=dhcp)
    render_report(report)
    if not report.healthy:
        raise BenchUnhealthy(f"{report.unhealthy_count} of {len(report.items)} checks failed "
                             f"(console logs in {report.log_dir})")


def register(app: typer.Typer) -> None:
    """Add ``check`` to the ``hil rig`` group (called by framework/cli.py)."""
    app.command("check")(check_command)
