"""`hil explore`: hunt for disagreements between the rig's phones and the resolution core.

Generated cases (seeded) run on every phone in parallel; each distinct disagreement is
shrunk to a minimal option set on a phone and confirmed; the findings, a report section
and an inferred behaviour profile per firmware x model go to ``<reports>/<run>/explore``.
Exit 0 when nothing was found, 1 when there are findings, 2 on bad input.

``--offline`` explores a sim rig's firmware models instead of its phones: each phone is the
planner of the firmware class the rig names for it (``sim.firmware`` or
``sim.phones.<name>.firmware``, with its deviations), so a user's firmware model can be
explored in seconds, without a lab, namespaces or root (framework.explore.oracle).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from framework import resources
from framework.resolution import Profile, ResolutionInputError, get_profile


def load_profile(spec: str) -> Profile:
    """``2.2`` / ``3.4`` or a saved profile file (``Profile.to_dict()`` JSON)."""
    path = Path(spec)
    if spec.endswith(".json") or path.exists():
        try:
            data = json.loads(path.read_text())
        except OSError as exc:
            raise typer.BadParameter(f"{spec}: {exc.strerror}", param_hint="--profile") from None
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"{spec}:{exc.lineno}: not JSON ({exc.msg})",
                                     param_hint="--profile") from None
        try:
            return Profile.from_dict(data, where=spec)
        except ResolutionInputError as exc:
            raise typer.BadParameter(str(exc), param_hint="--profile") from None
    try:
        return get_profile(spec)
    except (ResolutionInputError, KeyError) as exc:
        raise typer.BadParameter(f"{spec!r}: {exc}", param_hint="--profile") from None


class _Display:
    """One progress line on stderr at most every ``every_s`` (and at each phase change)."""

    def __init__(self, every_s: float = 2.0) -> None:
        self.every_s = every_s
        self._last = 0.0
        self._phase = ""
        self._lock = threading.Lock()

    def __call__(self, p: Any) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last >= self.every_s or p.phase != self._phase:
                self._last, self._phase = now, p.phase
                print(p.line(), file=sys.stderr, flush=True)


def command(
    rig: Annotated[Path, typer.Option(envvar="HIL_RIG", help="rig file")] = resources.DEFAULT_RIG,
    budget: Annotated[int | None, typer.Option(
        help="generated cases to run (each a phone boot); default 100 unless --time")] = None,
    time_s: Annotated[float | None, typer.Option(
        "--time", help="explore for this many seconds instead of a case budget")] = None,
    seed: Annotated[int, typer.Option(help="hypothesis seed: same seed, same cases")] = 0,
    shrink_budget: Annotated[int, typer.Option(help="phone runs per finding for shrinking")
                             ] = 40,
    confirm: Annotated[int, typer.Option(help="re-runs of each minimal case")] = 3,
    profile: Annotated[str | None, typer.Option(
        help="2.2, 3.4 or a saved profile JSON (default: per phone firmware)")] = None,
    phones: Annotated[str | None, typer.Option(help="comma-separated phone names")] = None,
    settle: Annotated[float | None, typer.Option(help="settle window, seconds")] = None,
    request_timeout: Annotated[float | None, typer.Option(
        help="seconds to wait for an expected request that does not come")] = None,
    extra_names: Annotated[bool, typer.Option(
        "--extra-names/--no-extra-names", help="generate values with a third ';' name")] = True,
    reports: Annotated[Path, typer.Option(help="reports directory")] = resources.DEFAULT_REPORTS,
    run_id: Annotated[str | None, typer.Option(help="run directory name")] = None,
    offline: Annotated[bool, typer.Option(
        "--offline", help="explore the planners of the sim rig's firmware classes "
                          "(sim.firmware), without a lab")] = False,
) -> None:
    """Run generated cases on the rig's phones; shrink and confirm every disagreement."""
    # Imported here: `hil` mounts this command at start-up, and the grammar needs
    # hypothesis, which only `hil explore` should pay for.
    from framework.errors import RigFault
    from framework.explore.engine import ExploreConfig
    from framework.rig import RigError
    from framework.runner.options import RunOptions
    from framework.runner.session import LabSession

    if budget is not None and time_s is not None:
        raise typer.BadParameter("give --budget or --time, not both", param_hint="--budget")
    if budget is not None and budget < 1:
        raise typer.BadParameter(f"{budget}: expected at least 1 case", param_hint="--budget")
    if time_s is not None and time_s <= 0:
        raise typer.BadParameter(f"{time_s}: expected seconds > 0", param_hint="--time")
    if shrink_budget < 0 or confirm < 1:
        raise typer.BadParameter("--shrink-budget must be >= 0 and --confirm >= 1",
                                 param_hint="--confirm")
    if not rig.exists():
        raise typer.BadParameter(f"{rig}: no such rig file", param_hint="--rig")
    chosen = load_profile(profile) if profile else None
    config = ExploreConfig(seed=seed, budget=None if time_s is not None else (budget or 100),
                           time_s=time_s, shrink_budget=shrink_budget, confirm=confirm,
                           extra_names=extra_names)
    if offline:
        result = _explore_offline(rig, chosen, config, phones, reports, run_id)
        typer.echo(result)
        raise typer.Exit(0 if result.startswith("nothing") else 1)
    options = RunOptions(rig_path=rig, reports_dir=reports, run_id=run_id, capture=False,
                         phones=phones.split(",") if phones else None, settle_s=settle,
                         request_timeout_s=request_timeout)
    try:
        session = LabSession(options)
    except (RigError, RigFault) as exc:
        raise typer.BadParameter(str(exc), param_hint="--rig") from None
    with session:
        _log_to_file(session.run_dir / "explore" / "explore.log")
        result = _explore(session, chosen, config)
    typer.echo(result)
    typer.echo(f"{'html':<9} {_html_report(session.run_dir)}")
    raise typer.Exit(0 if result.startswith("nothing") else 1)


def _html_report(run_dir: Path) -> Path:
    """The run's HTML report, its exploration section included (``hil report html``)."""
    from framework.records import load_record
    from framework.report import html

    return html.write(load_record(run_dir), run_dir / "certification.html")


def _log_to_file(path: Path) -> None:
    """Service chatter (files not found...) goes to a log file, not over the progress."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)


def _explore(session: Any, chosen: Profile | None, config: Any) -> str:
    from framework.explore.engine import Explorer
    from framework.explore.findings import document, write
    from framework.explore.oracle import LaneOracle

    oracles, profiles = [], {}
    for name, lane in session.lanes.items():
        if lane.broken:
            print(f"hil explore: phone {name} left out: {lane.broken}", file=sys.stderr)
            continue
        if chosen is not None:
            lane.profile = chosen
        oracles.append(LaneOracle(session, name))
        profiles[name] = lane.profile
    if not oracles:
        raise typer.BadParameter("no phone of the rig is usable", param_hint="--rig")
    explorer = Explorer(oracles, profiles, config, on_progress=_Display())
    groups = explorer.run()
    doc = document(groups, config, explorer.progress,
                   {"rig": session.rig.name, "run": session.run_id})
    return _summary(explorer, groups, write(session.run_dir / "explore", doc))


def _explore_offline(rig: Path, chosen: Profile | None, config: Any, phones: str | None,
                     reports: Path, run_id: str | None) -> str:
    """Every phone of a sim rig as its firmware class's planner (no lab): the findings go to
    ``<reports>/<run>/explore`` as for a run on the wire."""
    from framework.explore.engine import Explorer
    from framework.explore.findings import document, write
    from framework.explore.oracle import planner_oracles
    from framework.resolution import profile_for_version
    from framework.rig import RigError
    from framework.sim.config import SimConfigError

    wanted = phones.split(",") if phones else None
    try:
        oracles = planner_oracles(rig, wanted)
        profiles = {o.name: chosen or profile_for_version(o.firmware) for o in oracles}
    except (RigError, SimConfigError, ResolutionInputError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--rig") from None
    missing = sorted(set(wanted or ()) - {o.name for o in oracles})
    if missing:
        raise typer.BadParameter(f"no phone named {missing[0]!r} in {rig}",
                                 param_hint="--phones")
    if not oracles:
        raise typer.BadParameter("the rig has no phone", param_hint="--rig")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    run = run_id or f"{stamp}-offline"
    explorer = Explorer(oracles, profiles, config, on_progress=_Display())
    groups = explorer.run()
    doc = document(groups, config, explorer.progress,
                   {"rig": str(rig), "run": run, "oracle": "offline planner"})
    return _summary(explorer, groups, write(reports / run / "explore", doc))


def _summary(explorer: Any, groups: Any, paths: dict[str, Path]) -> str:
    n = sum(len(g.findings) for g in groups)
    flaky = sum(len(g.flaky) for g in groups)
    lines = [("nothing found" if n == 0 else f"{n} finding(s)") +
             (f" ({flaky} flaky, not reproduced)" if flaky else "") +
             f" in {explorer.progress.generated} generated cases, "
             f"{explorer.progress.phone_runs} phone runs, {explorer.progress.elapsed_s:.0f} s"]
    lines += [f"{what:<9} {path}" for what, path in paths.items()]
    return "\n".join(lines)
