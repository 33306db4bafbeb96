"""``hil release``: firmware release files.

``hil release inspect FILE... [--json] [--firmware-version V]`` reads each AudioCodes
``.img`` container (framework.release.container) and prints its model, version, sections
and whether every section checksum matches. Exit codes: 0 all images sound, 1 any image
bad (one line per problem on stderr, naming the file and the offset or section).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from framework.release.container import inspect_file

app = typer.Typer(help="Firmware release images: inspect AudioCodes .img containers.",
                  no_args_is_help=True)


@app.command("inspect")
def inspect_command(
    files: Annotated[list[Path], typer.Argument(help=".img files")],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON list of images")] = False,
    firmware_version: Annotated[str | None, typer.Option(
        help="the version when neither a Release section nor the file name says it")] = None,
) -> None:
    """Model, version, sections and checksum status of each image; exit 1 if any is bad."""
    reports = [inspect_file(path, firmware_version) for path in files]
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        for report in reports:
            typer.echo(f"{report.file}: model {report.model or '?'}, version "
                       f"{report.version or '?'}, {len(report.sections)} sections, "
                       f"{'ok' if report.ok else 'BAD'}")
            for section in report.sections:
                typer.echo(f"  {section['name']:<16} {section['length']:>10} bytes  "
                           f"checksum {'ok' if section['checksum_ok'] else 'BAD'}")
    for report in reports:
        if report.error:
            typer.echo(report.error, err=True)
    if not all(r.ok for r in reports):
        raise typer.Exit(1)
