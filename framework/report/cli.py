"""`hil report ...`: render and compare certification records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from framework.records import CertificationDocument, RecordError, load_record
from framework.report import diff as diff_mod
from framework.report import html

app = typer.Typer(help="Certification reports: render, diff, merge.", no_args_is_help=True)


def _load(path: Path) -> CertificationDocument:
    try:
        return load_record(path)
    except RecordError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command("html")
def html_command(run: Annotated[Path, typer.Argument(help="run directory or certification.json")],
                 out: Annotated[Path | None, typer.Option(help="output file")] = None) -> None:
    """Render the HTML certification report of a run."""
    doc = _load(run)
    target = out or ((run if run.is_dir() else run.parent) / "certification.html")
    html.write(doc, target)
    typer.echo(str(target))


@app.command("diff")
def diff_command(
    a: Annotated[Path, typer.Argument(help="the earlier run (directory or certification.json)")],
    b: Annotated[Path, typer.Argument(help="the later run")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Cases whose verdict changed between two runs; exit 1 when any did."""
    changes = diff_mod.diff(_load(a), _load(b))
    if as_json:
        typer.echo(json.dumps([c.__dict__ for c in changes], indent=2))
    else:
        table = Table(title=f"{len(changes)} case(s) changed verdict")
        for col in ("case", "model", "before", "after", "reason now"):
            table.add_column(col)
        for c in changes:
            table.add_row(c.case, c.model, c.before or "-", c.after or "-", c.reason_after)
        Console().print(table)
    raise typer.Exit(1 if changes else 0)


@app.command("merge")
def merge_command(
    runs: Annotated[list[Path], typer.Argument(help="run directories or certification.json files")],
    out: Annotated[Path, typer.Option(help="directory for the merged record and its HTML")],
    run_id: Annotated[str | None, typer.Option(help="id of the merged run (default: --out name)")
                      ] = None,
) -> None:
    """Merge several runs (e.g. one per rig) into one certification record and report.

    Each case is tagged with its rig and place (the rig name, or the run id when two runs
    share a rig)."""
    from framework.report.merge import SourceRun, merge, write_merged

    docs = [(r, _load(r)) for r in runs]
    rigs = [d.run.rig for _, d in docs]
    sources = [SourceRun(d, place=(rigs[i] if rigs.count(rigs[i]) == 1
                                   else d.run.id or str(r)),
                         path=r) for i, (r, d) in enumerate(docs)]
    try:
        doc = merge(sources, run_id=run_id or out.name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    path = write_merged(doc, out)
    s = doc.summary
    typer.echo(f"merged {len(sources)} run(s): {s['total']} cases, {s['passed']} passed, "
               f"{s['failed']} failed, {s['broken']} broken, {s['observed']} observed")
    typer.echo(f"record  {path}")
    typer.echo(f"report  {out / 'certification.html'}")
