"""`hil rig`: print the rig-file JSON Schema, validate a rig file.

Mounted by framework/cli.py, which also adds ``hil rig check`` from framework.bench.cli
(the health check drives consoles, PDUs and phones, which sit above the rig file). A bad
rig file prints one clear message per problem on stderr and exits 2, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import click
import typer

from framework import resources
from framework.errors import InputError
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


def load_or_exit(path: Path) -> Rig:
    """The rig file loaded, or :class:`RigFileError` (exit 2) with its problems."""
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
def validate_command(rig: RigOption = resources.DEFAULT_RIG) -> None:
    """Validate a rig file without touching the bench."""
    loaded = load_or_exit(rig)
    typer.echo(f"{rig}: ok: rig {loaded.name!r}, {len(loaded.phones)} phone(s), "
               f"{len(loaded.pdus)} PDU(s)")
