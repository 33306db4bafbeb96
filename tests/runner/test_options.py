"""Run options are declared once (framework.runner.options.RunOptions): `hil run` and the
pytest plugin offer exactly its flags, with its help texts, and both turn their values
into the same RunOptions."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from framework.runner.options import OptionError, RunOptions, run_flags

FLAGS = ["--rig", "--profile", "--switch", "--phones", "--settle", "--trigger", "--firmware", "--restore",
         "--reports", "--run-id", "--resume", "--allow-other-dhcp", "--sign", "--no-manage-sim",
         "--boot-timeout", "--request-timeout", "--random-provisioning-time"]


class _Group:
    """Stands in for pytest's option group: an argparse parser that keeps the calls."""

    def __init__(self) -> None:
        self.parser = argparse.ArgumentParser()
        self.calls: dict[str, dict[str, Any]] = {}

    def addoption(self, *names: str, **kw: Any) -> None:
        self.calls[names[0]] = kw
        self.parser.add_argument(*names, **kw)


class _Parser:
    def __init__(self) -> None:
        self.group = _Group()

    def getgroup(self, *args: Any) -> _Group:
        return self.group


def _pytest_options(argv: list[str]) -> tuple[RunOptions, _Group]:
    from framework.pytest_plugin import pytest_addoption

    parser = _Parser()
    pytest_addoption(parser)  # type: ignore[arg-type]
    values = parser.group.parser.parse_args(argv)
    return RunOptions.from_flags(vars(values)), parser.group


def test_every_flag_is_declared_once_and_offered_by_both_commands() -> None:
    import typer

    from framework.cli import app

    assert [s.name for s in run_flags()] == FLAGS
    _, group = _pytest_options([])
    assert list(group.calls) == [*FLAGS, "--hil-progress"]
    run = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    params = {p.name: p for p in run.params}
    for spec in run_flags():
        assert group.calls[spec.name]["help"] == spec.help
        assert params[spec.dest].opts == [spec.name] and params[spec.dest].help == spec.help
    assert [p.opts[0] for p in run.params] == [*FLAGS, "-k", "--hold-place", "--hold-owner"]


def test_pytest_flags_and_direct_construction_give_the_same_options(tmp_path: Path) -> None:
    options, _ = _pytest_options([
        "--rig", str(tmp_path / "r.yaml"), "--phones", "ph1, ph2", "--settle", "0.5",
        "--trigger", "power-cycle", "--firmware", "a", "--firmware", "b", "--no-manage-sim",
        "--resume", str(tmp_path / "run")])
    assert options == RunOptions(rig_path=tmp_path / "r.yaml", phones=["ph1", "ph2"],
                                 settle_s=0.5, trigger="power-cycle",
                                 firmware=[Path("a"), Path("b")], manage_sim=False,
                                 resume=tmp_path / "run")
    defaults, _ = _pytest_options([])
    assert defaults == RunOptions()


def test_a_bad_value_names_its_flag() -> None:
    with pytest.raises(OptionError, match=r"^--trigger: expected check-sync or web-reboot or shell-reboot or power-cycle$"):
        RunOptions.from_flags({"trigger": "kick"})


def test_phone_names_are_checked_against_the_rig() -> None:
    from framework.rig import load_rig
    from framework.runner.options import ROOT

    rig = load_rig(ROOT / "rigs" / "sim.yaml")
    every = [p.name for p in rig.phones]
    assert RunOptions().phone_names(rig) == every
    assert RunOptions(phones=every[:1]).phone_names(rig) == every[:1]
    with pytest.raises(OptionError, match=r"^--phones: no phone 'nope' in the rig"):
        RunOptions.from_flags({"phones": "nope"}).phone_names(rig)


@pytest.mark.parametrize(("argv", "says"), [
    (["--trigger", "kick"], "Invalid value for --trigger: expected check-sync or web-reboot or shell-reboot or power-cycle"),
    (["--phones", "nope"], "Invalid value for --phones: no phone 'nope' in the rig"),
    (["--rig", "/nonexistent.yaml"], "/nonexistent.yaml: no such rig file"),
    (["--hold-owner", "x"], "--hold-owner needs --hold-place"),
])
def test_hil_run_refuses_bad_options_before_anything_starts(
        argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    from framework.cli import main

    assert main(["run", *argv]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


def test_switch_flag_is_checked_and_names_the_flag() -> None:
    opts, _ = _pytest_options(["--switch", "url_compare=byte-exact", "--switch",
                               "judged_grounds=manual"])
    assert opts.switch_values() == {"url_compare": "byte-exact", "judged_grounds": "manual"}
    for bad, said in (("url_compare=nope", "expected one of"), ("bogus", "NAME=VALUE"),
                      ("nope=1", "unknown switch 'nope'")):
        with pytest.raises(OptionError) as err:
            _pytest_options(["--switch", bad])
        assert err.value.flag == "--switch" and said in str(err.value)
