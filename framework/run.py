"""`hil run`: the main job. The whole case matrix on a rig, then the reports.

Its options are generated from framework.runner.options.RunOptions (the one declaration
the pytest plugin uses too); ``-k`` and ``--hold-place``/``--hold-owner`` are its own.
It loads the rig once, checks what can be checked before anything starts (rig file,
``--phones``, the release of ``--firmware``, the restore point of ``--restore``,
``--resume``), then runs pytest on ``testcases/`` in-process with the plugin, handing it
those options and that rig (framework.pytest_plugin.GivenRun): a run is exactly what
``pytest testcases --rig ...`` does. Allure results and JUnit XML go into the run
directory; then the HTML certification report is rendered from the record (and the Allure
HTML report when the ``allure`` generator is installed), both showing the evidence digest
(and with ``--sign KEY`` the key's fingerprint), and ``junit.xml`` from the record
(framework.report.junit; pytest's own goes to ``pytest-junit.xml``); last,
``MANIFEST.json`` lists every file of the run (framework.report.manifest), signed with
``--sign KEY``. Exit codes (:func:`exit_code`): 0 every case passed or was observed;
1 a case failed; 3 the rig was broken (a broken case, none failed, or the plugin's
refusal: the rig is not usable); 2 on bad input or a release that cannot be used.

``--hold-place PLACE --hold-owner OWNER`` (given by `hil lab run`, framework.labgrid.fence):
the run drives a labgrid place its parent locked. It dies with its parent, checks before
every case that OWNER still holds the place (coordinator: ``LG_COORDINATOR``) and, once
it does not, records the remaining cases as not run and exits 4.

Top layer: imports the runner, the release and the report, never imported by them.
"""

from __future__ import annotations

import functools
import inspect
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

import typer

from framework import resources
from framework.records import RecordError, by_ground_line, load_record
from framework.report import allure as allure_report
from framework.report import html, junit, manifest, signing
from framework.runner.options import ROOT, FlagSpec, OptionError, RunOptions, run_flags

if TYPE_CHECKING:
    from framework.rig import Rig


def _flag_parameter(spec: FlagSpec) -> inspect.Parameter:
    """``spec`` as a typer option: same flag, help and default as the pytest plugin's."""
    default: Any = spec.default
    if spec.switch:
        annotation: Any = bool
        default = False
    elif spec.repeatable:
        annotation = list[spec.type] | None  # type: ignore[name-defined]
    else:
        annotation = spec.type if default is not None else spec.type | None
    option = typer.Option(spec.name, help=spec.help, metavar=spec.metavar, envvar=spec.envvar,
                          show_default=default not in (None, False) and "default" not in spec.help)
    return inspect.Parameter(spec.dest, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, option])


def with_run_options(body: Callable[..., None]) -> Callable[..., None]:
    """A typer command taking every :class:`RunOptions` flag and ``body``'s own keyword
    options; it builds the options (a bad value is a bad parameter naming its flag) and
    calls ``body(options, **own)``."""
    hints = get_type_hints(body, include_extras=True)
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints[p.name])
           for p in list(inspect.signature(body).parameters.values())[1:]]
    flags = run_flags()
    params = [_flag_parameter(s) for s in flags] + own

    @functools.wraps(body)
    def command(**values: Any) -> None:
        given = {s.dest: values.pop(s.dest) for s in flags}
        try:
            options = RunOptions.from_flags(given)
        except OptionError as exc:
            raise typer.BadParameter(exc.reason, param_hint=exc.flag) from None
        body(options, **values)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    del command.__wrapped__  # typer reads the signature above, not body's
    return command


@with_run_options
def command(
    options: RunOptions,
    select: Annotated[str | None, typer.Option("-k", help="pytest -k expression")] = None,
    hold_place: Annotated[str | None, typer.Option(
        help="labgrid place this run drives, locked by its parent (`hil lab run`): die with "
             "the parent; before every case check --hold-owner still holds it "
             "(coordinator: LG_COORDINATOR), else the remaining cases are not run (exit 4)")
                          ] = None,
    hold_owner: Annotated[str | None, typer.Option(
        help="labgrid user that must hold --hold-place (default: <login>.hil-<parent pid>)")
                          ] = None,
) -> None:
    """Run every case on every phone of the rig and write the certification record.

    Exit codes: 0 every case passed or was observed; 1 a case failed (the firmware);
    3 the rig was broken (a case broken or the rig unusable, none failed); 2 usage or bad
    input (a bad flag, rig file or release; no case selected); 4 the labgrid booking was
    lost (--hold-place): the remaining cases were not run; 130 interrupted.
    """
    import datetime as dt

    import pytest

    from framework import pytest_plugin

    rig = _checked(options)
    key = _signing_key(options)
    fence = _fence(hold_place, hold_owner)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id, reports = options.run_id, options.reports_dir
    if options.resume is not None:
        run_id, reports = options.resume.name, options.resume.parent
    run_id = run_id or f"{stamp}-{options.rig_path.stem}"
    run_dir = reports / run_id
    options = options.model_copy(update={"run_id": run_id, "reports_dir": reports})
    cases = resources.testcases_dir()
    # a checkout's pytest configuration is its pyproject.toml; an installed wheel's cases
    # take none (not whatever ini file happens to sit above site-packages)
    config = ["--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml")] \
        if resources.in_checkout() else ["--rootdir", str(cases), "-c", os.devnull]
    args = [str(cases), "--hil-progress", "-q", "--capture=sys",
            "-p", "no:cacheprovider", "--alluredir", str(run_dir / "allure-results"),
            "--junitxml", str(run_dir / "pytest-junit.xml"), "-o", "console_output_style=classic",
            *config]
    if select:
        args += ["-k", select]
    pytest_plugin.forget_refusal()
    try:
        # the plugin module itself, registered under its name: the root conftest's
        # pytest_plugins then finds it loaded (no second import, no assert-rewrite warning)
        code = pytest.main(args, plugins=[pytest_plugin, pytest_plugin.GivenRun(options, rig)])
    except KeyboardInterrupt:
        code = pytest.ExitCode.INTERRUPTED
    if fence is not None and fence.parent_gone:  # its deadline stays armed until we exit
        typer.echo(f"hil run: stopped: {fence.parent_gone}", err=True)
        raise typer.Exit(fence.exit_code)
    if pytest_plugin.refusal() is not None:
        # refused before any case (rig 3, release 2): the plugin said why in one line; a
        # record may exist (the lab had started) but holds no verdict to render
        raise typer.Exit(int(code) or EXIT_USAGE)
    try:
        doc = load_record(run_dir)
    except RecordError as exc:
        if code == pytest.ExitCode.INTERRUPTED:  # Ctrl-C before the record was written
            raise typer.Exit(EXIT_INTERRUPTED) from None
        typer.echo(f"hil run: no certification record was written ({exc}); pytest exit {code}",
                   err=True)
        raise typer.Exit(EXIT_USAGE) from None
    # the Allure results get the record's times, parameters and observed status before
    # they are sealed (they are evidence: framework.report.allure)
    allure_report.amend_results(run_dir / "allure-results", doc)
    seal = manifest.Seal(manifest.evidence_digest(run_dir),
                         signing.fingerprint(key) if key else None)
    report = html.write(doc, run_dir / "certification.html", seal=seal)
    junit.write(doc, run_dir / junit.FILENAME)
    allure = shutil.which("allure") or _local_allure()
    if allure:
        _seal_allure_environment(run_dir, seal)
        gen = subprocess.run(allure_report.generate_command(allure, run_dir, doc, reports),
                             capture_output=True, timeout=300,
                             env={**os.environ, "NO_COLOR": "1"})
        if gen.returncode == 0:
            typer.echo(f"allure  {run_dir / 'allure-report' / 'index.html'}")
    sealed = manifest.write(run_dir, key)
    s = {k: v for k, v in doc.summary.items() if isinstance(v, int)}
    typer.echo(f"run {run_id}: {s['passed']} passed, {s['failed']} failed, {s['broken']} broken, "
               f"{s['observed']} observed, {s['skipped']} skipped")
    grounds = by_ground_line(doc.summary)
    if grounds:  # each assertion's verdict per ground kind (issue 16)
        typer.echo(grounds)
    typer.echo(f"record  {run_dir / 'certification.json'}")
    typer.echo(f"report  {report}")
    typer.echo(f"junit   {run_dir / junit.FILENAME}")
    signed = f"signed by key {signing.short(sealed.fingerprint)}" if sealed.fingerprint \
        else "unsigned"
    typer.echo(f"manifest {run_dir / manifest.MANIFEST} ({signed}; evidence "
               f"sha256:{sealed.evidence_digest})")
    if sealed.evidence_digest != seal.evidence_digest:  # a file changed under the renderings
        typer.echo("hil run: the evidence changed while the reports were rendered: "
                   f"`hil report verify {run_dir}` and re-render", err=True)
    if fence is not None:
        fence.done()
        if fence.lost:
            typer.echo(f"hil run: stopped: {fence.lost}; the remaining cases were not run")
            raise typer.Exit(fence.exit_code)
    raise typer.Exit(exit_code(s, code))


#: `hil run`'s exit codes (README "Exit codes"; `hil run --help`).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BROKEN, EXIT_FENCE = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130


def exit_code(summary: dict[str, int], pytest_code: int) -> int:
    """The run's exit code from its record's verdict counts and pytest's exit code: a
    failed case wins over a broken one (the firmware's fault is the news; the rig's is
    also in the record); a run that selected no case is bad input."""
    if pytest_code == 2:  # pytest.ExitCode.INTERRUPTED: Ctrl-C (a refusal exits before)
        return EXIT_INTERRUPTED
    if summary.get("failed", 0):
        return EXIT_FAILED
    if summary.get("broken", 0) or pytest_code not in (0, 1, 5):
        return EXIT_BROKEN  # a rig fault, or a run that did not complete
    if not summary.get("total", 0) or pytest_code == 5:
        return EXIT_USAGE
    return EXIT_OK


def _checked(options: RunOptions) -> Rig:
    """The run's rig, loaded once, after everything that can be refused before any part of
    the lab starts: a bad parameter (exit 2) naming the flag otherwise."""
    from framework.rig import RigError, load_rig

    if not options.rig_path.exists():
        raise typer.BadParameter(f"{options.rig_path}: no such rig file", param_hint="--rig")
    try:
        rig = load_rig(options.rig_path)
        options.phone_names(rig)
    except RigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--rig") from None
    except OptionError as exc:
        raise typer.BadParameter(exc.reason, param_hint=exc.flag) from None
    if options.firmware:
        from framework.release import ReleaseError, load_release

        try:
            load_release(list(options.firmware), one_per_model=not options.restore)
        except ReleaseError as exc:
            raise typer.BadParameter(str(exc), param_hint="--firmware") from None
    if options.restore:
        from framework.release.restore import restore_point_error

        problem = restore_point_error(options.reports_dir, rig.name)
        if problem:
            raise typer.BadParameter(problem, param_hint="--restore")
    if options.resume is not None and not (options.resume / "cases.jsonl").exists():
        raise typer.BadParameter(f"{options.resume}: not a run directory (no cases.jsonl)",
                                 param_hint="--resume")
    return rig


def _signing_key(options: RunOptions) -> Any:
    """The private key of ``--sign``, loaded before anything starts (a bad parameter
    naming the reference, never the key, otherwise); None without ``--sign``."""
    if options.sign is None:
        return None
    try:
        return signing.load_private_key(str(options.sign))
    except signing.KeyFileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--sign") from None


def _seal_allure_environment(run_dir: Path, seal: manifest.Seal) -> None:
    """The Allure environment (written by the plugin at the start) names the evidence
    digest and the signing key before `allure generate` renders it."""
    env = run_dir / "allure-results" / "environment.properties"
    if not env.parent.is_dir():
        return
    lines = [line for line in (env.read_text().splitlines() if env.exists() else [])
             if not line.startswith(("evidence_sha256=", "signing_key="))]
    lines.append(f"evidence_sha256={seal.evidence_digest}")
    if seal.fingerprint:
        lines.append(f"signing_key={seal.fingerprint}")
    env.write_text("".join(f"{line}\n" for line in lines))


def _fence(place: str | None, owner: str | None) -> Any:
    """The run's fence for ``--hold-place`` (armed: death signal, watchdog), or None. Once
    activated, the plugin hands its guard to the session before the first case
    (framework.labgrid.fence.active_guard)."""
    if place is None:
        if owner is not None:
            raise typer.BadParameter("--hold-owner needs --hold-place", param_hint="--hold-owner")
        return None
    from framework.labgrid.client import LabgridError, run_owner
    from framework.labgrid.fence import Fence, activate

    if not os.environ.get("LG_COORDINATOR"):
        raise typer.BadParameter("needs the labgrid coordinator in LG_COORDINATOR",
                                 param_hint="--hold-place")
    try:
        fence = Fence(place, owner or run_owner(os.getppid()))
        fence.lock_guard.client()  # labgrid-client must be there before the run starts
    except LabgridError as exc:
        raise typer.BadParameter(str(exc), param_hint="--hold-place") from None
    fence.arm()
    lost = fence.lock_guard()  # the lanes ask before every case; this is before the start
    if lost:
        typer.echo(f"hil run: not starting: {lost}", err=True)
        raise typer.Exit(fence.exit_code)
    activate(fence)
    return fence


def _local_allure() -> str | None:
    local = ROOT / ".tools" / "node_modules" / ".bin" / "allure"
    return str(local) if local.exists() else None
