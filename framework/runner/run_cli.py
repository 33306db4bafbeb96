"""`hil run`: the main job. The whole case matrix on a rig, then the reports.

Runs pytest on ``testcases/`` with the plugin (so a run is exactly what
``pytest testcases --rig ...`` does), writing Allure results and JUnit XML into the run
directory, then renders the HTML certification report from the record (and the Allure
HTML report when the ``allure`` generator is installed). Exit 0 only when no case failed
and none was broken (observations are not verdicts).

``--hold-place PLACE --hold-owner OWNER`` (given by `hil lab run`, framework.labgrid.fence):
the run drives a labgrid place its parent locked. It dies with its parent, checks before
every case that OWNER still holds the place (coordinator: ``LG_COORDINATOR``) and, once
it does not, records the remaining cases as not run and exits 4.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Annotated, Any

import typer

from framework.report import html
from framework.runner.record import RecordError, load_record
from framework.runner.session import ROOT


def command(
    rig: Annotated[Path, typer.Option(help="rig file")] = ROOT / "rigs" / "sim.yaml",
    profile: Annotated[str | None, typer.Option(help="behaviour profile (default: per phone)")
                       ] = None,
    phones: Annotated[str | None, typer.Option(help="comma-separated phone names")] = None,
    settle: Annotated[float | None, typer.Option(help="settle window, seconds")] = None,
    trigger: Annotated[str, typer.Option(help="reprovision or power-cycle")] = "reprovision",
    firmware: Annotated[list[Path] | None, typer.Option(
        help="install this release first: a directory of images or image files (repeatable)")
                        ] = None,
    restore: Annotated[bool, typer.Option(
        "--restore", help="first put back what each phone ran before the last --firmware")
                       ] = False,
    reports: Annotated[Path, typer.Option(help="reports directory")] = ROOT / "reports",
    run_id: Annotated[str | None, typer.Option(help="run directory name")] = None,
    select: Annotated[str | None, typer.Option("-k", help="pytest -k expression")] = None,
    resume: Annotated[Path | None, typer.Option(
        help="an earlier run directory (reports/<run-id>): run only its missing cases")] = None,
    allow_other_dhcp: Annotated[bool, typer.Option(
        "--allow-other-dhcp", help="start even if another DHCP server answers")] = False,
    no_manage_sim: Annotated[bool, typer.Option(
        "--no-manage-sim", help="the simulated rig is already up: neither start nor stop it")
                             ] = False,
    hold_place: Annotated[str | None, typer.Option(
        help="labgrid place this run drives, locked by its parent (`hil lab run`): die with "
             "the parent; before every case check --hold-owner still holds it "
             "(coordinator: LG_COORDINATOR), else the remaining cases are not run (exit 4)")
                          ] = None,
    hold_owner: Annotated[str | None, typer.Option(
        help="labgrid user that must hold --hold-place (default: <login>.hil-<parent pid>)")
                          ] = None,
) -> None:
    """Run every case on every phone of the rig and write the certification record."""
    import datetime as dt

    import pytest

    if trigger not in ("reprovision", "power-cycle"):
        raise typer.BadParameter("expected reprovision or power-cycle", param_hint="--trigger")
    if not rig.exists():
        raise typer.BadParameter(f"{rig}: no such rig file", param_hint="--rig")
    if firmware:
        from framework.release import ReleaseError, load_release

        try:
            load_release(firmware, one_per_model=not restore)
        except ReleaseError as exc:
            raise typer.BadParameter(str(exc), param_hint="--firmware") from None
    if restore:
        from framework.release.install import restore_point_error

        problem = restore_point_error(rig, reports)
        if problem:
            raise typer.BadParameter(problem, param_hint="--restore")
    fence = _fence(hold_place, hold_owner)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if resume is not None:
        if not (resume / "cases.jsonl").exists():
            raise typer.BadParameter(f"{resume}: not a run directory (no cases.jsonl)",
                                     param_hint="--resume")
        run_id, reports = resume.name, resume.parent
    run_id = run_id or f"{stamp}-{rig.stem}"
    run_dir = reports / run_id
    args = [str(ROOT / "testcases"), "--rig", str(rig), "--reports", str(reports),
            "--run-id", run_id, "--trigger", trigger, "--hil-progress", "-q", "--capture=sys",
            "-p", "no:cacheprovider", "--alluredir", str(run_dir / "allure-results"),
            "--junitxml", str(run_dir / "junit.xml"), "-o", "console_output_style=classic",
            "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml")]
    if profile:
        args += ["--profile", profile]
    for path in firmware or []:
        args += ["--firmware", str(path)]
    if restore:
        args += ["--restore"]
    if phones:
        args += ["--phones", phones]
    if settle is not None:
        args += ["--settle", str(settle)]
    if select:
        args += ["-k", select]
    if resume is not None:
        args += ["--resume", str(run_dir)]
    if allow_other_dhcp:
        args += ["--allow-other-dhcp"]
    if no_manage_sim:
        args += ["--no-manage-sim"]
    try:
        code = pytest.main(args, plugins=[_guard_plugin(fence.guard)] if fence else None)
    except KeyboardInterrupt:
        code = pytest.ExitCode.INTERRUPTED
    if fence is not None and fence.parent_gone:  # its deadline stays armed until we exit
        typer.echo(f"hil run: stopped: {fence.parent_gone}", err=True)
        raise typer.Exit(fence.exit_code)
    try:
        doc = load_record(run_dir)
    except RecordError as exc:
        from framework.pytest_plugin import refusal

        if refusal() is not None:  # refused before any case: the plugin said why, one line
            raise typer.Exit(code or 2) from None
        typer.echo(f"hil run: no certification record was written ({exc}); pytest exit {code}",
                   err=True)
        raise typer.Exit(2) from None
    report = html.write(doc, run_dir / "certification.html")
    allure = shutil.which("allure") or _local_allure()
    if allure:
        gen = subprocess.run([allure, "generate", str(run_dir / "allure-results"), "-o",
                              str(run_dir / "allure-report")], capture_output=True, timeout=300,
                             env={**os.environ, "NO_COLOR": "1"})
        if gen.returncode == 0:
            typer.echo(f"allure  {run_dir / 'allure-report' / 'index.html'}")
    s = doc["summary"]
    typer.echo(f"run {run_id}: {s['passed']} passed, {s['failed']} failed, {s['broken']} broken, "
               f"{s['observed']} observed, {s['skipped']} skipped")
    typer.echo(f"record  {run_dir / 'certification.json'}")
    typer.echo(f"report  {report}")
    ok = s["failed"] == 0 and s["broken"] == 0 and s["total"] > 0 and code in (0, 1)
    if fence is not None:
        fence.done()
        if fence.lost:
            typer.echo(f"hil run: stopped: {fence.lost}; the remaining cases were not run")
            raise typer.Exit(fence.exit_code)
    raise typer.Exit(0 if ok else 1)


def _fence(place: str | None, owner: str | None) -> Any:
    """The run's fence for ``--hold-place`` (armed: death signal, watchdog), or None."""
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


def _guard_plugin(guard: Any) -> Any:
    """A pytest plugin that sets ``session.guard`` on the ``hil_lab`` fixture's session when
    framework.pytest_plugin has not (active_guard()); then only once the fixture returned,
    after the lanes started."""
    import pytest

    class GuardPlugin:
        @pytest.hookimpl(hookwrapper=True)
        def pytest_fixture_setup(self, fixturedef: Any) -> Any:
            outcome = yield
            if fixturedef.argname == "hil_lab" and outcome.excinfo is None:
                session = outcome.get_result()
                if getattr(session, "guard", "") is None:
                    session.guard = guard

    return GuardPlugin()


def _local_allure() -> str | None:
    local = ROOT / ".tools" / "node_modules" / ".bin" / "allure"
    return str(local) if local.exists() else None
