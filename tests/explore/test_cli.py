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


def _tiny_rig(tmp_path: Path, **knobs: object) -> Path:
    import yaml

    from tests.sim.harness import phones, rig_document

    document = rig_document(phones(2), firmware="tests.explore.test_oracle:TinyFirmware")
    document["sim"]["phones"]["ph2"].update(knobs)
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_offline_explores_the_rigs_firmware_class_without_a_lab(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rig = _tiny_rig(tmp_path, deviations=["shout"])
    code = main(["explore", "--offline", "--rig", str(rig), "--budget", "8",
                 "--shrink-budget", "4", "--confirm", "1", "--reports", str(tmp_path / "r"),
                 "--run-id", "off"])
    out = capsys.readouterr().out
    assert code == 1 and "finding(s)" in out  # the tiny firmware ignores the options
    doc = json.loads((tmp_path / "r" / "off" / "explore" / "findings.json").read_text())
    assert doc["explore"]["oracle"] == "offline planner"
    assert sorted(p for g in doc["groups"] for p in g["phones"]) == ["ph1", "ph2"]
    requested = {url for g in doc["groups"] for f in g["findings"]
                 for attempt in f["attempts"] for url in attempt["requests"]}
    # What the rig's class asked for (ph2 with its own deviation), not Faithful400HD's URLs.
    assert requested <= {"http://192.0.2.1/tiny/440HD-00908F000001.cfg",
                         "http://192.0.2.1/TINY/440HD-00908F000002.CFG"}, requested
    assert len(requested) == 2


@pytest.mark.parametrize(("knobs", "says"), [
    ({"deviations": ["mac-case-flipped"]},
     "unknown deviation(s) mac-case-flipped; known: shout (phone ph2, firmware class "
     "tests.explore.test_oracle:TinyFirmware)"),
    ({"firmware": "nowhere.module:X"}, "firmware module 'nowhere.module' cannot be imported"),
])
def test_offline_bad_sim_section_is_one_line(tmp_path: Path, knobs: dict[str, object],
                                             says: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["explore", "--offline", "--rig", str(_tiny_rig(tmp_path, **knobs)),
                 "--budget", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and says in err and "Traceback" not in err
    assert len(err.splitlines()) == 1, err
