"""The `hil` command line as a user meets it (issue 17): `hil --version`, help text without
escape artefacts, ``HIL_RIG`` honoured by every command taking ``--rig``, ``--json`` on the
commands that print tables."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
import typer.main

from framework import cli
from framework.runner import session
from framework.sim.rigfile import write_sim_rig

ROOT = Path(__file__).resolve().parents[2]


def _commands() -> Iterator[tuple[str, click.Command]]:
    def walk(path: str, cmd: click.Command) -> Iterator[tuple[str, click.Command]]:
        yield path, cmd
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                yield from walk(f"{path} {name}".strip(), sub)

    yield from walk("", typer.main.get_command(cli.app))


COMMANDS = dict(_commands())


def hil(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([sys.executable, "-m", "framework.cli", *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=120, env={**os.environ, **(env or {})})


def test_version_names_the_package_version_and_the_git_revision() -> None:
    proc = hil("--version")
    assert proc.returncode == 0, proc.stderr
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    from importlib.metadata import version

    assert re.fullmatch(rf"hil {re.escape(version('hil400hd'))} \(git {rev}(-dirty)?\)\n",
                        proc.stdout), proc.stdout


def test_version_outside_a_checkout_says_installed(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.setattr(session, "ROOT", tmp_path)  # where an installed framework sits
    assert cli.version_text().endswith("(installed)")


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=lambda p: p or "hil")
def test_help_has_no_escape_artefacts(path: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main([*path.split(), "--help"])
    out = capsys.readouterr().out
    assert code == 0 and "Usage:" in out
    assert "\\[" not in out, [line for line in out.splitlines() if "\\[" in line]


def test_help_shows_defaults_in_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["rig", "check", "--help"])
    assert "[default: 15.0; x>=0.1]" in " ".join(capsys.readouterr().out.split())


RIG_COMMANDS = sorted(p for p, c in COMMANDS.items()
                      if any("--rig" in getattr(o, "opts", ()) for o in c.params))


def test_every_command_taking_rig_reads_hil_rig() -> None:
    assert {"run", "rig check", "rig validate", "sim up", "sim status", "sim deviations",
            "explore"} <= set(RIG_COMMANDS)
    for path in RIG_COMMANDS:
        (opt,) = [o for o in COMMANDS[path].params if "--rig" in getattr(o, "opts", ())]
        assert opt.envvar == "HIL_RIG", path


@pytest.mark.parametrize("path", ["run", "rig validate", "rig check", "sim status",
                                  "sim deviations", "explore"])
def test_hil_rig_is_the_rig_the_command_uses(path: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "bench.yaml"
    proc = hil(*path.split(), env={"HIL_RIG": str(missing)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert str(missing) in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_sim_deviations_json(tmp_path: Path) -> None:
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix="hilt-cj", phones=1)
    proc = hil("sim", "deviations", "--json", env={"HIL_RIG": str(rig)})
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    plain = hil("sim", "deviations", "--rig", str(rig)).stdout.splitlines()
    assert [r["name"] for r in rows] == [line.split()[0] for line in plain]
    assert all(r["changes"] and r["manual"] and r["firmware"] for r in rows)


def test_table_printers_take_json() -> None:
    for path in ("rig check", "report diff", "sim status", "sim deviations", "release inspect",
                 "report verify", "resolve"):
        assert any("--json" in getattr(o, "opts", ()) for o in COMMANDS[path].params), path


def test_hil_rig_reaches_pytest_runs_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from framework.runner.options import RunOptions

    monkeypatch.setenv("HIL_RIG", str(tmp_path / "bench.yaml"))
    assert RunOptions.from_flags({}).rig_path == tmp_path / "bench.yaml"
    assert RunOptions.from_flags({"rig": "other.yaml"}).rig_path == Path("other.yaml")
    monkeypatch.delenv("HIL_RIG")
    assert RunOptions.from_flags({}).rig_path.name == "sim.yaml"


def test_run_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    cli.main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for code in ("0 every case passed", "1 a case failed", "3 the rig was broken",
                 "2 usage or bad input", "4 the labgrid booking was lost"):
        assert code in text, code


def test_lab_janitor_json(monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    from framework.labgrid import cli as lab_cli
    from framework.labgrid import janitor

    actions = [janitor.JanitorAction("unlock", "rack-1", "qa.hil-4242", True),
               janitor.JanitorAction("cancel-reservation", "TOKEN", "qa.hil-4242", False,
                                     "refused")]
    monkeypatch.setattr(lab_cli, "_client", lambda coordinator: object())
    monkeypatch.setattr(janitor, "sweep", lambda client, dry_run: actions)
    assert cli.main(["lab", "janitor", "--json"]) == 1  # one action failed
    rows = json.loads(capsys.readouterr().out)
    assert [(r["kind"], r["target"], r["done"], r["detail"]) for r in rows] == [
        ("unlock", "rack-1", True, ""), ("cancel-reservation", "TOKEN", False, "refused")]


def test_lab_run_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    from framework.labgrid import cli as lab_cli
    from framework.labgrid import runner
    from framework.records import CertificationDocument, dumps, summarise
    from tests.records.samples import case, phone_record, run_record

    place_dir = tmp_path / "lab" / "places" / "bench-a"
    place_dir.mkdir(parents=True)
    cases = [case("t10-2/r2-host-ip", "ph1", "broken")]
    (place_dir / "certification.json").write_text(dumps(CertificationDocument(
        run=run_record("a", status="finished", end=20.0), phones=[phone_record("ph1")],
        cases=cases, summary=summarise(cases))))

    class FakeLab:
        run_id, run_dir, results = "lab", tmp_path / "lab", {}

        def __init__(self, options: object, echo: object) -> None:
            self.echo = echo

        def run(self) -> list[runner.PlaceRun]:
            self.echo("place bench-a: ran")  # type: ignore[operator]
            return [runner.PlaceRun("bench-a", "a", status="ran", exit_code=3,
                                    reason="the rig was broken (no case failed)",
                                    run_dir=place_dir)]

    monkeypatch.setattr(lab_cli, "_client", lambda coordinator: object())
    monkeypatch.setattr(runner, "LabRun", FakeLab)
    monkeypatch.setattr(runner, "install_sigterm_as_interrupt", lambda: None)
    rig = write_sim_rig(tmp_path / "rig.yaml", prefix="hilt-cl", phones=1)
    code = cli.main(["lab", "run", "--places", "rig=bench-a", "--rig", str(rig), "--json"])
    out, err = capsys.readouterr()
    assert code == 1 and "place bench-a: ran" in err
    doc = json.loads(out)
    assert doc["run_id"] == "lab" and doc["summary"]["broken"] == 1
    assert [(p["place"], p["exit_code"]) for p in doc["places"]] == [("bench-a", 3)]
    assert Path(doc["record"]).is_file()
