"""`hil lab run`: one `hil run` per labgrid place, in parallel, then one merged record.

For each coordinator place whose tags match ``--places`` and that a rig file names:
reserve it (its tags plus ``name=PLACE``), wait for the allocation, lock it, read its
resources, write the resolved rig file (framework.labgrid.places.resolve_rig), health-check
the bench (``hil rig check``: a place that fails is reported and skipped, not run), run
``hil run`` on it, and unlock. At most ``jobs`` places at once. The runs write under
``<reports>/<run-id>/places/<place>/``; the merged record (framework.report.merge) goes to
``<reports>/<run-id>/certification.json`` with its HTML rendering.

Interruptions: Ctrl-C or SIGTERM stops waiting at once, asks each running ``hil run`` to
stop (SIGINT, so its record is finished), then every booking unlocks and cancels its
reservation before we exit. A SIGKILL cannot be caught: each `hil run` is fenced
(framework.labgrid.fence: it dies with us and checks its place's lock before every case).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from framework import resources
from framework.labgrid.booking import PlaceBooking
from framework.labgrid.client import LabgridClient, LabgridError, Place
from framework.labgrid.fence import EXIT_FENCED, dies_with_parent
from framework.labgrid.places import PlaceMismatch, place_name, resolve_rig, safe
from framework.rig import RigError, load_rig
from framework.rig.bounded_yaml import safe_load
from framework.rig.model import Rig

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class PlaceRun:
    """What happened on one place: ``ran`` (with the hil run exit code), ``skipped`` (health
    check failed, or no rig file), ``error`` (labgrid or rig problem) or ``interrupted``."""

    place: str
    rig: str | None
    status: str = "pending"
    reason: str = ""
    exit_code: int | None = None
    run_dir: Path | None = None
    rig_file: Path | None = None
    start: float | None = None
    end: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"place": self.place, "rig": self.rig, "status": self.status,
                "reason": self.reason, "exit_code": self.exit_code,
                "run_dir": str(self.run_dir) if self.run_dir else None,
                "rig_file": str(self.rig_file) if self.rig_file else None,
                "start": self.start, "end": self.end}


@dataclass
class LabRunOptions:
    filters: Mapping[str, str]
    rig_files: Sequence[Path]
    reports: Path = field(default_factory=resources.default_reports)
    run_id: str | None = None
    jobs: int = 1
    wait_s: float = 3600.0
    health_check: bool = True
    health_timeout_s: float = 300.0
    run_timeout_s: float = 4 * 3600.0
    #: extra `hil run` arguments (e.g. ["-k", "T10-2", "--phones", "ph1"])
    hil_run_args: Sequence[str] = ()
    coordinator: str | None = None


@dataclass
class ChildProcesses:
    """Every child we wait on, so an interrupt can stop them all at once."""

    stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _procs: dict[int, subprocess.Popen[Any]] = field(default_factory=dict)

    def tracker(self) -> Callable[[subprocess.Popen[str] | None], None]:
        """A per-thread ``register`` callback for LabgridClient."""
        current: list[subprocess.Popen[str]] = []

        def register(proc: subprocess.Popen[str] | None) -> None:
            if proc is not None:
                self.add(proc)
                current.append(proc)
            elif current:
                self.remove(current.pop())
        return register

    def add(self, proc: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._procs[proc.pid] = proc

    def remove(self, proc: subprocess.Popen[Any]) -> None:
        with self._lock:
            self._procs.pop(proc.pid, None)

    def interrupt(self) -> None:
        """Stop waiting: labgrid clients running now (a blocked ``wait``) are killed, `hil
        run`s get SIGINT (they finish their record). Later calls (unlock, cancel) run."""
        self.stop.set()
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            if proc.poll() is None:
                is_hil = getattr(proc, "hil_run", False)
                proc.send_signal(signal.SIGINT if is_hil else signal.SIGKILL)


def load_place_rigs(rig_files: Iterable[Path]) -> dict[str, tuple[Path, Rig]]:
    """Place name -> (rig file, rig) for every rig file; RigError on a bad file, ValueError
    when two rig files name one place."""
    out: dict[str, tuple[Path, Rig]] = {}
    for path in rig_files:
        rig = load_rig(path)
        name = place_name(rig)
        if name in out:
            raise ValueError(f"{path}: place {name!r} is already named by {out[name][0]}")
        out[name] = (path, rig)
    return out


def default_rig_files(directory: Path | None = None) -> list[Path]:
    """Rig files in ``directory`` (default: the shipped rigs/) that have a ``labgrid:``
    section."""
    found = []
    for path in sorted((directory or resources.rigs_dir()).glob("*.yaml")):
        try:
            doc = safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(doc, dict) and "labgrid" in doc:
            found.append(path)
    return found


@functools.cache
def hil_run_flag(flag: str) -> bool:
    """Does this checkout's `hil run` take ``flag``?"""
    proc = subprocess.run(_hil("run", "--help"), capture_output=True, text=True, cwd=ROOT,
                          timeout=60, env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    return flag in proc.stdout


def _hil(*args: str) -> list[str]:
    return [sys.executable, "-m", "framework.cli", *args]


class LabRun:
    """One `hil lab run`: choose places, run them ``jobs`` at a time, merge."""

    def __init__(self, options: LabRunOptions, *, echo: Callable[[str], None] = print) -> None:
        self.options = options
        self.echo = echo
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        self.run_id = options.run_id or f"{stamp}-lab"
        self.run_dir = options.reports / self.run_id
        self.children = ChildProcesses()
        self.rigs = load_place_rigs(options.rig_files)
        self.results: dict[str, PlaceRun] = {}

    def client(self) -> LabgridClient:
        return LabgridClient(self.options.coordinator, register=self.children.tracker(),
                             stop=self.children.stop)

    def choose(self) -> list[PlaceRun]:
        """Places whose tags match the filters; a matching place no rig file names is
        reported and skipped."""
        places: list[Place] = [p for p in self.client().places()
                               if p.matches_tags(self.options.filters)]
        chosen = []
        for place in places:
            entry = self.rigs.get(place.name)
            run = PlaceRun(place=place.name, rig=entry[1].name if entry else None)
            if entry is None:
                run.status, run.reason = "skipped", "no rig file names this place"
            chosen.append(run)
        return chosen

    def run(self) -> list[PlaceRun]:
        runs = self.choose()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for r in runs:
            self.results[r.place] = r
            if r.status == "skipped":
                self.echo(f"place {r.place}: skipped: {r.reason}")
        todo = [r for r in runs if r.status == "pending"]
        if not todo:
            return runs
        with ThreadPoolExecutor(max_workers=max(1, self.options.jobs),
                                thread_name_prefix="place") as pool:
            futures = [pool.submit(self._run_place, r) for r in todo]
            try:
                for f in futures:
                    f.result()
            except BaseException:
                shield_release()
                self.children.interrupt()
                for f in futures:
                    f.cancel()
                pool.shutdown(wait=True)
                for r in todo:
                    if r.status in ("pending", "running"):
                        r.status, r.reason = "interrupted", "the lab run was interrupted"
                raise
        return runs

    def _run_place(self, run: PlaceRun) -> None:
        if self.children.stop.is_set():
            run.status, run.reason = "interrupted", "the lab run was interrupted"
            return
        path, rig = self.rigs[run.place]
        client = self.client()
        booking = PlaceBooking(client, {**self.options.filters, "name": run.place},
                               wait_s=self.options.wait_s)
        self.echo(f"place {run.place}: reserving ({client.owner})")
        try:
            with booking:
                run.status = "running"
                self.echo(f"place {run.place}: locked")
                self._on_locked(run, client, path, rig)
        except (LabgridError, PlaceMismatch, RigError) as exc:
            if self.children.stop.is_set():
                run.status, run.reason = "interrupted", "the lab run was interrupted"
            elif isinstance(exc, PlaceMismatch) or "has no matching remote resource" in str(exc):
                # the place's resources are gone or unusable (exporter offline, bench moved)
                run.status, run.reason = "skipped", f"health check failed: {exc}"
            else:
                run.status, run.reason = "error", str(exc)
        except Exception as exc:  # a bug or I/O error here: this place fails, the rest run
            run.status, run.reason = "error", f"{type(exc).__name__}: {exc}"
        finally:
            if booking.release_errors:
                run.reason = (run.reason + "; " if run.reason else "") + \
                    "release: " + "; ".join(booking.release_errors)
            if booking.left_alone:
                run.reason = (run.reason + "; " if run.reason else "") + booking.left_alone
            released = not booking.release_errors and not booking.left_alone
            self.echo(f"place {run.place}: {run.status}"
                      f"{': ' + run.reason if run.reason else ''}"
                      f"{' (released)' if released else ''}")

    def _on_locked(self, run: PlaceRun, client: LabgridClient, path: Path, rig: Rig) -> None:
        document = safe_load(path.read_text())  # already validated by load_rig
        resolved = resolve_rig(document, rig, client.acquired_resources(run.place))
        extra = list(self.options.hil_run_args)
        if resolved.get("sim") is not None:
            # The simulated bench behind a place belongs to the lab, not to this run: `hil
            # run` must not bring it up or down. Without `--no-manage-sim` support it would,
            # so the resolved rig drops its sim section (settle as on the sim: 0.6 s).
            if hil_run_flag("--no-manage-sim"):
                extra.append("--no-manage-sim")
            else:
                resolved.pop("sim")
                if "--settle" not in extra:
                    extra += ["--settle", "0.6"]
        place_dir = self.run_dir / "places"
        place_dir.mkdir(parents=True, exist_ok=True)
        run.rig_file = self.run_dir / "rigs" / f"{safe(run.place)}.yaml"
        run.rig_file.parent.mkdir(parents=True, exist_ok=True)
        run.rig_file.write_text(
            f"# resolved from {path} and labgrid place {run.place} ({client.coordinator})\n"
            + yaml.safe_dump(resolved, sort_keys=False))
        load_rig(run.rig_file)  # the resolved file must still be a valid rig
        if self.options.health_check:
            healthy, why = self._health(run)
            if not healthy:
                run.status, run.reason = "skipped", f"health check failed: {why}"
                return
        run.run_dir = place_dir / safe(run.place)
        # fencing (framework.labgrid.fence): the child dies with us and checks before every
        # case that this run still holds the place
        argv = _hil("run", "--rig", str(run.rig_file), "--reports", str(place_dir),
                    "--run-id", safe(run.place), "--hold-place", run.place,
                    "--hold-owner", client.owner, *extra)
        env = {**os.environ, "LG_COORDINATOR": str(client.coordinator)}
        run.start = time.time()
        with open(self.run_dir / f"{safe(run.place)}.hil-run.log", "w") as log_file:
            proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, cwd=ROOT,
                                    start_new_session=True, env=env)
            proc.hil_run = True  # type: ignore[attr-defined]
            self.children.add(proc)
            try:
                if self.children.stop.is_set():
                    proc.send_signal(signal.SIGINT)
                try:
                    run.exit_code = proc.wait(timeout=self.options.run_timeout_s)
                except subprocess.TimeoutExpired:
                    _interrupt(proc)
                    run.exit_code = proc.returncode
                    run.status, run.reason = "error", (
                        f"hil run did not finish within {self.options.run_timeout_s:.0f} s")
                    return
            finally:
                if proc.poll() is None:  # an interrupt or crash here: never leave it running
                    _interrupt(proc)
                self.children.remove(proc)
                run.end = time.time()
        if self.children.stop.is_set():
            run.status, run.reason = "interrupted", "the lab run was interrupted"
        else:
            run.status = "ran"
            run.reason = {0: "", 1: "cases failed", 3: "the rig was broken (no case failed)",
                          EXIT_FENCED: "the run lost the place's lock: the remaining cases "
                                       "were not run"}.get(
                run.exit_code or 0, f"hil run exit {run.exit_code}")

    def _health(self, run: PlaceRun) -> tuple[bool, str]:
        assert run.rig_file is not None
        # it drives the bench (PDU, consoles): it must not outlive a SIGKILLed run
        argv = dies_with_parent(_hil("rig", "check", "--rig", str(run.rig_file), "--log-dir",
                                     str(self.run_dir / "health" / safe(run.place))))
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, cwd=ROOT, start_new_session=True,
                                env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
        self.children.add(proc)
        try:
            out, _ = proc.communicate(timeout=self.options.health_timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return False, f"hil rig check gave no verdict within {self.options.health_timeout_s:.0f} s"
        finally:
            self.children.remove(proc)
        (self.run_dir / "health").mkdir(parents=True, exist_ok=True)
        (self.run_dir / "health" / f"{safe(run.place)}.txt").write_text(out)
        if proc.returncode == 0:
            return True, ""
        lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
        fails = [ln for ln in lines if " fail " in f" {ln} " or "fail" in ln.split("│")[:4]]
        return False, (fails[0] if fails else (lines[-1] if lines else
                                               f"hil rig check exit {proc.returncode}"))


def install_sigterm_as_interrupt() -> None:
    """SIGTERM takes the same path as Ctrl-C (KeyboardInterrupt in the main thread)."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)


def _releasing(signum: int, frame: object) -> None:
    print("hil lab run: still releasing the places (SIGKILL leaves them to `hil lab janitor`)",
          file=sys.stderr)


def shield_release() -> None:
    """A second Ctrl-C or SIGTERM must not cut the unlocks short: only say what is going on."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _releasing)
        signal.signal(signal.SIGTERM, _releasing)


def _interrupt(proc: subprocess.Popen[Any]) -> None:
    """Stop a ``hil run``: SIGINT first (it closes its cases and finishes its record),
    SIGKILL when it has not ended a minute later."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
