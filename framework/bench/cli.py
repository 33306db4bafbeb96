"""`hil rig check`: health-check a bench's PDUs, consoles and phones without changing it.

The command lives here, above the drivers it uses, and framework/cli.py mounts it under
``hil rig`` (``register``): framework.rig stays below console, power and phone.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import click
import typer

from framework import resources
from framework.errors import HilError
from framework.rig.cli import RigOption, load_or_exit


class BenchUnhealthy(click.ClickException, HilError):
    """`hil rig check` found an unhealthy PDU, console or phone: exit code 1."""

    exit_code = 1


def check_command(
    rig: RigOption = resources.DEFAULT_RIG,
    log_dir: Annotated[Path | None, typer.Option(
        "--log-dir", help="where console logs go (default: reports/rig-check/<time>)")] = None,
    timeout: Annotated[float, typer.Option(min=0.1, help="seconds per console step")] = 15.0,
    deadline: Annotated[float, typer.Option(
        min=0.5, help="seconds for the whole check: every PDU and console is checked at "
        "once, and one still waiting then is reported as not answering")] = 8.0,
    dhcp: Annotated[bool, typer.Option(
        "--dhcp/--no-dhcp", help="serve DHCP to the rig's phones during the check "
        "(fixed addresses, no provisioning options)")] = True,
    as_json: Annotated[bool, typer.Option(
        "--json", help="print one JSON object (rig, healthy, checks: name, target, ok, "
        "detail, seconds) instead of lines")] = False,
) -> None:
    """Health check: every PDU (reachable, outlet state readable) and phone (console, login,
    /etc/release matches model, MAC and firmware), all at once within --deadline. One line
    per check; exits 1 if anything is unhealthy."""
    from framework.bench.health import check_bench, render_report

    loaded = load_or_exit(rig)
    root = logging.getLogger()
    if not root.handlers:  # every problem is in the report; what drivers log (a library's
        root.addHandler(logging.NullHandler())  # traceback too) goes to rig-check.log
    report = check_bench(loaded, log_dir=log_dir, timeout=timeout, dhcp=dhcp,
                         deadline=deadline)
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        render_report(report)
    if not report.healthy:
        raise BenchUnhealthy(f"{report.unhealthy_count} of {len(report.items)} checks failed "
                             f"(console logs in {report.log_dir})")


def register(app: typer.Typer) -> None:
    """Add ``check`` to the ``hil rig`` group (called by framework/cli.py)."""
    app.command("check")(check_command)
