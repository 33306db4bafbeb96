"""`hil rig survey`: the command, its table, ``survey.json`` and ``--write``.

framework/cli.py mounts it under ``hil rig`` (``register``): it drives the lab stack and
the phones, which sit above framework.rig. ``--write`` edits the rig file in place with
ruamel.yaml's round trip (comments and order kept), a ``.bak`` beside it first, each
written value annotated with the survey run id; only a survey without problems writes.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path
from typing import Annotated, Any

import click
import typer

from framework import resources
from framework.errors import HilError
from framework.records import atomic_write
from framework.rig.cli import RigOption, load_or_exit
from framework.runner.survey import Survey, run_survey


class SurveyFailed(click.ClickException, HilError):
    """A phone could not be surveyed (unreachable, wrong password, no trigger): exit 1."""

    exit_code = 1


def survey_command(
    rig: RigOption = resources.DEFAULT_RIG,
    phones: Annotated[list[str] | None, typer.Option(
        "--phones", help="survey only these phones (comma-separated, or the option "
        "repeated; default: all)")] = None,
    write: Annotated[bool, typer.Option(
        "--write", help="write the measured dialect, trigger and firmware into the rig "
        "file (comments kept, RIG.bak beside it)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print survey.json")] = False,
    reps: Annotated[int, typer.Option(min=1, max=10, help="repetitions per control path")] = 3,
    reports: Annotated[Path, typer.Option("--reports", help="reports directory")
                       ] = resources.DEFAULT_REPORTS,
    timeout: Annotated[float, typer.Option(min=0.5, help="seconds per console step")] = 10.0,
) -> None:
    """First contact: log in over each console, try each control path (timed, on the wire),
    read the phone's DHCP identity and whether it takes the lab's configuration file.
    Read-only unless --write. Exits 1 if any phone could not be surveyed."""
    loaded = load_or_exit(rig)
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    names = [n.strip() for item in phones or () for n in item.split(",") if n.strip()]
    unknown = [n for n in names if n not in {p.name for p in loaded.phones}]
    if unknown:
        raise click.BadParameter(f"no phone named {unknown[0]!r} in {rig}",
                                 param_hint="--phones")
    survey = run_survey(loaded, rig, phones=names, reps=reps, reports_dir=reports,
                        timeout=timeout)
    report = survey.as_json()
    (survey.run_dir / "survey.json").write_text(json.dumps(report, indent=2) + "\n")
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        render(survey)
    if not survey.ok:
        problems = [survey.error] if survey.error else [
            p for ph in survey.phones for p in ph.problems]
        raise SurveyFailed(f"{len(problems)} problem(s); nothing written "
                           f"(report: {survey.run_dir / 'survey.json'})")
    if write:
        write_rig(rig, survey)
        typer.echo(f"{rig}: written (previous version in {rig}.bak)")


def render(survey: Survey) -> None:
    """One row per phone and control path; a phone that could not be surveyed: one row."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"hil rig survey {survey.run_id}")
    for col in ("phone", "what", "found", "to DHCP s (min/med/max)", "to last request s",
                "sim configured s"):
        table.add_column(col)
    if survey.error:
        table.add_row("-", "lab", f"[red]{escape(survey.error)}[/red]")
    for ph in survey.phones:
        if ph.problems:
            table.add_row(ph.name, "[red]cannot survey[/red]", escape("; ".join(ph.problems)))
            continue
        d = ph.dialect
        table.add_row(ph.name, "dialect", escape(f"{d.get('family')} {d.get('firmware')} "
                                                 f"prompt {d.get('prompt')}"))
        for c in ph.consoles:
            table.add_row("", f"console {c.kind}", escape(f"login {c.login_prompt!r} shell "
                                                          f"{c.shell_prompt!r}"))
        expected = ph.expected.get("to_dhcp_s", {})
        for p in ph.paths:
            found = "[green]works[/green]" if p.works else \
                f"[yellow]no[/yellow]: {escape(p.error or '')}"
            table.add_row("", p.trigger, found, _triple(p.to_dhcp_s),
                          _triple(p.to_last_request_s), str(expected.get(p.trigger, "")))
        idt = ph.identity
        table.add_row("", "DHCP identity", escape(
            f"55={idt.get('option_55')} 60={idt.get('option_60')} 61={idt.get('option_61')} "
            f"77={idt.get('option_77')} UA={idt.get('user_agents')}"))
        s = ph.settings
        table.add_row("", "settings file", f"fetched={s.get('fetched')} "
                      f"restarted_after={s.get('restarted_after')}")
    Console(width=160).print(table)


def _triple(values: list[float]) -> str:
    if not values:
        return ""
    import statistics

    return f"{min(values):.2f}/{statistics.median(values):.2f}/{max(values):.2f}"


def write_rig(path: Path, survey: Survey) -> None:
    """The rig file with each surveyed phone's ``shell:`` and ``surveyed:`` set, and
    ``bench.trigger`` when the rig names none (the fastest path every phone has)."""
    import statistics

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML()  # round trip: comments, order and quoting kept
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)  # the rig files' own style
    yaml.width = 4096  # never fold a long line (a regex, a template)
    data = yaml.load(path.read_text())
    note = f"hil rig survey {survey.run_id}"
    by_name = {p["name"]: p for p in data.get("phones", [])}
    for ph in survey.phones:
        entry = by_name[ph.name]
        d = ph.dialect
        shell = entry.get("shell")
        if not isinstance(shell, CommentedMap):
            shell = CommentedMap()
            entry["shell"] = shell
        values: dict[str, Any] = {"prompt": d["prompt"],
                                  "release_fields": CommentedMap(d["release_fields"])}
        if d.get("login_prompt"):
            values["login_prompt"] = d["login_prompt"]
        if d.get("mac_commands"):
            values["mac_commands"] = list(d["mac_commands"])
        for key, value in values.items():
            shell[key] = value
            shell.yaml_add_eol_comment(note, key)
        works = [p for p in ph.paths if p.works]
        stamp = CommentedMap(
            run=survey.run_id, firmware=d["firmware"], triggers=[p.trigger for p in works],
            to_dhcp_s={p.trigger: round(statistics.median(p.to_dhcp_s), 3) for p in works},
            to_last_request_s={p.trigger: round(statistics.median(p.to_last_request_s), 3)
                               for p in works})
        entry["surveyed"] = stamp
        entry.yaml_add_eol_comment(note, "surveyed")
    bench = data.get("bench")
    if bench is None:
        bench = CommentedMap()
        data["bench"] = bench
    # the whole rig's trigger only from a survey of all its phones (--phones may leave out
    # one that lacks the path the surveyed ones have)
    if not bench.get("trigger") and {ph.name for ph in survey.phones} >= set(by_name):
        common = [t for t in _fastest(survey)
                  if all(any(p.trigger == t and p.works for p in ph.paths)
                         for ph in survey.phones)]
        if common:
            bench["trigger"] = common[0]
            bench.yaml_add_eol_comment(note, "trigger")
    text = io.StringIO()
    yaml.dump(data, text)  # all of it rendered before the file is touched
    shutil.copy2(path, path.with_name(path.name + ".bak"))
    atomic_write(path, text.getvalue())  # the old file or the new one, never half


def _fastest(survey: Survey) -> list[str]:
    """Triggers ordered by their slowest phone's median time to the last request."""
    import statistics

    worst: dict[str, float] = {}
    for ph in survey.phones:
        for p in ph.paths:
            if p.works:
                worst[p.trigger] = max(worst.get(p.trigger, 0.0),
                                       statistics.median(p.to_last_request_s))
    return sorted(worst, key=worst.__getitem__)


def register(app: typer.Typer) -> None:
    """Add ``survey`` to the ``hil rig`` group (called by framework/cli.py)."""
    app.command("survey")(survey_command)
