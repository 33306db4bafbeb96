"""`hil lab run | publish | janitor`: lab scale through a labgrid coordinator.

Mounted under `hil lab` by framework/cli.py (``register(app)``). labgrid itself runs
from its own venv (framework.labgrid.client). Bad input is one line on stderr, exit 2.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
import yaml

from framework import resources
from framework.labgrid.client import LabgridClient, LabgridError, LabgridMissing, split_filters

if TYPE_CHECKING:
    from framework.labgrid.runner import LabRun, PlaceRun


CoordinatorOption = Annotated[str | None, typer.Option(
    "--coordinator", envvar="LG_COORDINATOR", help="labgrid coordinator HOST:PORT")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _client(coordinator: str | None) -> LabgridClient:
    try:
        return LabgridClient(coordinator)
    except LabgridError as exc:
        raise _fail(f"hil lab: {exc}") from None


def publish_command(
    rig: Annotated[list[Path], typer.Option("--rig", envvar="HIL_RIG",
                                                  help="rig file (repeat for several)")],
    out: Annotated[Path, typer.Option(help="where the exporter configs and places.yaml go")
                   ] = Path("labgrid"),
    apply: Annotated[bool, typer.Option("--apply", help="create/update the places on the "
                                        "coordinator")] = False,
    coordinator: CoordinatorOption = None,
) -> None:
    """Generate labgrid exporter configuration and place definitions from rig files."""
    from framework.labgrid.places import exporter_configs, place_definition
    from framework.rig import RigError, load_rig

    try:
        rigs = [load_rig(path) for path in rig]
        configs = exporter_configs(rigs)
    except (RigError, ValueError) as exc:
        raise _fail(f"hil lab publish: {exc}") from None
    definitions = [place_definition(r) for r in rigs]
    names = [d.name for d in definitions]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise _fail(f"hil lab publish: place {dupes[0]!r} is named by more than one rig file")
    out.mkdir(parents=True, exist_ok=True)
    for exporter, doc in configs.items():
        path = out / f"exporter-{exporter}.yaml"
        # No comment header: labgrid reads the file as a Jinja2 template, where '#' starts
        # a line statement; each group's `location` says it was generated.
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        typer.echo(f"exporter {exporter}: {path}  (labgrid-exporter -c COORDINATOR "
                   f"--name {exporter} {path})")
    places_path = out / "places.yaml"
    places_path.write_text(yaml.safe_dump({"places": [d.to_dict() for d in definitions]},
                                          sort_keys=False))
    typer.echo(f"places: {places_path}")
    if apply:
        from framework.labgrid.publish import apply_places

        client = _client(coordinator)
        try:
            for line in apply_places(client, definitions):
                typer.echo(line)
        except LabgridError as exc:
            raise _fail(f"hil lab publish: {exc}", 3) from None


def run_command(
    places: Annotated[list[str], typer.Option(
        "--places", help="TAG=VALUE a place must carry (repeat, or comma-separate)")],
    jobs: Annotated[int, typer.Option("-j", "--jobs", min=1, max=64,
                                      help="places run at once")] = 1,
    rig: Annotated[list[Path] | None, typer.Option(
        "--rig", envvar="HIL_RIG", help="rig files naming places (default: rigs/*.yaml with a labgrid section)")
    ] = None,
    coordinator: CoordinatorOption = None,
    reports: Annotated[Path, typer.Option(help="reports directory")] = resources.DEFAULT_REPORTS,
    run_id: Annotated[str | None, typer.Option(help="run directory name")] = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for each reservation")] = 3600.0,
    check: Annotated[bool, typer.Option("--check/--no-check",
                                        help="health-check each place before its run")] = True,
    select: Annotated[str | None, typer.Option("-k", help="pytest -k expression")] = None,
    phones: Annotated[str | None, typer.Option(help="comma-separated phone names")] = None,
    trigger: Annotated[str | None, typer.Option(help="check-sync, web-reboot, shell-reboot or power-cycle")] = None,
    settle: Annotated[float | None, typer.Option(help="settle window, seconds")] = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="end with one JSON object (run_id, places, summary, record, report) "
                       "instead of the place table; progress goes to stderr")] = False,
) -> None:
    """Reserve every place matching the tags, one `hil run` per place (-j at once), then one
    merged certification record and report. Exit 0 when every place that ran passed."""
    from framework.labgrid.runner import (
        LabRun,
        LabRunOptions,
        default_rig_files,
        install_sigterm_as_interrupt,
    )
    from framework.rig import RigError

    try:
        filters = split_filters([p for item in places for p in item.split(",") if p])
    except ValueError as exc:
        raise _fail(f"hil lab run: --places {exc}") from None
    if not filters:
        raise _fail("hil lab run: --places needs at least one TAG=VALUE")
    rig_files = list(rig) if rig else default_rig_files()
    for path in rig_files:
        if not path.exists():
            raise _fail(f"hil lab run: --rig {path}: no such rig file")
    _client(coordinator)  # labgrid installed, a coordinator named: else exit 2 here
    extra: list[str] = []
    if select:
        extra += ["-k", select]
    if phones:
        extra += ["--phones", phones]
    if trigger:
        extra += ["--trigger", trigger]
    if settle is not None:
        extra += ["--settle", str(settle)]
    try:
        lab = LabRun(LabRunOptions(filters=filters, rig_files=rig_files, reports=reports,
                                   run_id=run_id, jobs=jobs, wait_s=wait, health_check=check,
                                   hil_run_args=extra, coordinator=coordinator),
                     echo=lambda s: typer.echo(s, err=as_json))
    except (RigError, ValueError) as exc:
        raise _fail(f"hil lab run: {exc}") from None
    install_sigterm_as_interrupt()
    try:
        runs = lab.run()
    except LabgridMissing as exc:
        raise _fail(f"hil lab run: {exc}") from None
    except LabgridError as exc:
        raise _fail(f"hil lab run: {exc}", 3) from None
    except KeyboardInterrupt:
        typer.echo("hil lab run: interrupted; bookings released (see each place below)",
                   err=True)
        runs = list(lab.results.values())
        _write_merge(lab, runs, as_json=as_json)
        raise typer.Exit(130) from None
    if not runs:
        raise _fail(f"hil lab run: no place on {lab.client().coordinator} carries "
                    f"{', '.join(f'{k}={v}' for k, v in filters.items())}", 3)
    _write_merge(lab, runs, as_json=as_json)
    ran = [r for r in runs if r.status == "ran"]
    ok = bool(ran) and all(r.exit_code == 0 for r in ran) and \
        not any(r.status in ("error", "interrupted") for r in runs)
    raise typer.Exit(0 if ok else 1)


def _write_merge(lab: LabRun, runs: list[PlaceRun], *, as_json: bool = False) -> Path:
    """The merged record and report of the places that ran; one summary line per place."""
    from framework.records import RecordError, load_record
    from framework.report.merge import SourceRun, merge, write_merged

    sources = []
    for r in runs:
        if r.run_dir is None:
            continue
        try:
            sources.append(SourceRun(load_record(r.run_dir), place=r.place, path=r.run_dir))
        except RecordError as exc:
            r.reason = (r.reason + "; " if r.reason else "") + str(exc)
    doc = merge(sources, run_id=lab.run_id, places=[r.to_dict() for r in runs])
    path = write_merged(doc, lab.run_dir)
    if as_json:
        typer.echo(json.dumps({"run_id": lab.run_id, "places": [r.to_dict() for r in runs],
                               "summary": doc.summary, "record": str(path),
                               "report": str(lab.run_dir / "certification.html")}, indent=2))
        return path
    for r in runs:
        typer.echo(f"  {r.place:<20} {r.status:<12} {r.reason}")
    s = doc.summary
    typer.echo(f"lab run {lab.run_id}: {len(sources)} place(s) ran; {s['passed']} passed, "
               f"{s['failed']} failed, {s['broken']} broken, {s['observed']} observed, "
               f"{s['skipped']} skipped")
    typer.echo(f"record  {path}")
    typer.echo(f"report  {lab.run_dir / 'certification.html'}")
    return path


def janitor_command(
    coordinator: CoordinatorOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="only say what would be done")
                       ] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="one JSON list of actions: kind, target, owner, done, detail")] = False,
) -> None:
    """Unlock places and cancel reservations left by runs of ours (this host) that died."""
    from framework.labgrid.janitor import sweep

    client = _client(coordinator)
    try:
        actions = sweep(client, dry_run=dry_run)
    except LabgridError as exc:
        raise _fail(f"hil lab janitor: {exc}", 3) from None
    if as_json:
        typer.echo(json.dumps([dataclasses.asdict(a) for a in actions], indent=2))
    for a in (() if as_json else actions):
        verb = ("would " if dry_run else "") + a.kind
        typer.echo(f"{verb} {a.target} (owner {a.owner}){': ' + a.detail if a.detail else ''}"
                   f"{'' if a.done or dry_run else ' FAILED'}")
    if not actions and not as_json:
        typer.echo("nothing left behind by dead runs")
    raise typer.Exit(1 if any(not a.done and not dry_run for a in actions) else 0)


def register(app: typer.Typer) -> None:
    """Add `run`, `publish` and `janitor` to `hil lab`."""
    app.command("run")(run_command)
    app.command("publish")(publish_command)
    app.command("janitor")(janitor_command)

