"""`hil rig`: print the rig-file JSON Schema, validate a rig file, health-check a bench.

Mounted by framework/cli.py. A bad rig file prints one clear message per problem on
stderr and exits 2, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import click
import typer

from framework.errors import HilError, InputError
from framework.rig.loader import RigError, load_rig
from framework.rig.model import Rig

app = typer.Typer(help="Rig files: schema, validation, bench health check.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None)

RigOption = Annotated[Path, typer.Option("--rig", envvar="HIL_RIG",
                                         help="rig file (YAML); default rigs/sim.yaml")]


class RigFileError(click.ClickException, InputError):
    """A bad rig file: its message on stderr, exit code 2 (a usage error, not a bench fault)."""

    exit_code = 2


class BenchUnhealthy(click.ClickException, HilError):
    """`hil rig check` found an unhealthy PDU, console or phone: exit code 1."""

    exit_code = 1


def _load_or_exit(path: Path) -> Rig:
    try:
        return load_rig(path)
    except RigError as exc:
        raise RigFileError(str(exc)) from None


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of rig files (for editors and CI linting)."""
    schema = Rig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "HIL 400HD rig file"
    typer.echo(json.dumps(schema, indent=2))


@app.command("validate")
def validate_command(rig: RigOption = Path("rigs/sim.yaml")) -> None:
    """Validate a rig file without touching the bench."""
    loaded = _load_or_exit(rig)
    typer.echo(f"{rig}: ok: rig {loaded.name!r}, {len(loaded.phones)} phone(s), "
               f"{len(loaded.pdus)} PDU(s)")


@app.command("check")
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
    from framework.rig.health import check_bench, render_report

    loaded = _load_or_exit(rig)
    report = check_bench(loaded, log_dir=log_dir, timeout=timeout, dhcp=dhcp)
    render_report(report)
    if not report.healthy:
        raise BenchUnhealthy(f"{report.unhealthy_count} of {len(report.items)} checks failed "
                             f"(console logs in {report.log_dir})")
