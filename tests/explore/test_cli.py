"""`hil explore` bad input: one line naming what is wrong, exit 2, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.cli import main
from framework.explore.cli import load_profile


@pytest.mark.parametrize(("args", "says"), [
    (["--budget", "5", "--time", "3"], "--budget or --time, not both"),
    (["--budget", "0"], "at least 1 case"),
    (["--time", "-1"], "seconds > 0"),
    (["--confirm", "0"], "--confirm"),
    (["--rig", "/nonexistent/rig.yaml"], "no such rig file"),
    (["--profile", "9.9"], "9.9"),
])
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], says: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explore", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err and "Traceback" not in err


def test_a_broken_rig_file_names_the_file(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    rig = tmp_path / "rig.yaml"
    rig.write_text("name: x\nphones: [1, 2\n")
    assert main(["explore", "--rig", str(rig), "--budget", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "rig.yaml" in err


def test_bad_profile_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_json = tmp_path / "p.json"
    bad_json.write_text("{not json")
    assert main(["explore", "--profile", str(bad_json)]) == 2
    assert "p.json:1: not JSON" in capsys.readouterr().err
    bad_switch = tmp_path / "q.json"
    bad_switch.write_text(json.dumps({"name": "q", "switches": {"mac_case": "sideways"}}))
    assert main(["explore", "--profile", str(bad_switch)]) == 2
    err = capsys.readouterr().err
    assert "mac_case" in err and len(err.strip().splitlines()) == 1


def test_a_saved_profile_loads() -> None:
    assert load_profile("3.4").name == "3.4"
