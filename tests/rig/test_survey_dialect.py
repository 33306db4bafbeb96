"""The dialect `hil rig survey` proposes from what a console showed (no bench needed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from framework.phone.dialect import ShellDialect
from framework.rig import PhoneSpec, load_rig
from framework.runner.survey_console import ConsoleFinding, propose_dialect
from tests.rig.sim_bench import ROOT


def spec(name: str = "ph1") -> PhoneSpec:
    return next(p for p in load_rig(ROOT / "rigs" / "sim.yaml").phones if p.name == name)


def seen(prompt: str, release: str, login: str | None = "440HD login: ") -> ConsoleFinding:
    fields = dict(line.split("=", 1) for line in release.splitlines() if "=" in line)
    return ConsoleFinding("serial", login_prompt=login, shell_prompt=prompt, release=release,
                          release_fields=fields, mac="00:90:8f:00:00:01",
                          mac_command="cat /sys/class/net/eth0/address")


def test_the_family_default_where_it_matches() -> None:
    got = propose_dialect(spec(), [seen("[admin@440HD ~]$ ",
                                        "HW_TYPE=440HD\nBUILD_PROFILE=release\n"
                                        "SWVERSION=2.2.8.61\n")])
    assert "error" not in got
    assert got["prompt"] == ShellDialect(family="2.x").shell_prompt
    assert got["family"] == "2.x" and got["firmware"] == "2.2.8.61"
    assert got["release_fields"] == {"model": "HW_TYPE", "version": "SWVERSION"}


def test_another_prompt_and_release_layout_become_patterns_that_match_them() -> None:
    got = propose_dialect(spec(), [seen("440HD:admin> ", "PRODUCT=440HD\nVERSION=2.2.9.1\n",
                                        login="Username: ")])
    assert got["release_fields"] == {"model": "PRODUCT", "version": "VERSION"}
    prompt = re.compile(got["prompt"].replace("{user}", "admin"))
    assert prompt.fullmatch("440HD:admin> ") and prompt.fullmatch("405HD:admin> ")
    assert not prompt.fullmatch("440HD:root> ")
    assert re.fullmatch(got["login_prompt"], "Username: ")


def test_no_version_in_release_or_disagreeing_consoles_is_an_error() -> None:
    assert "error" in propose_dialect(spec(), [seen("$ ", "HW_TYPE=440HD\n")])
    two = [seen("[admin@440HD ~]$ ", "HW_TYPE=440HD\nSWVERSION=2.2.8.61\n"),
           seen("440HD:admin> ", "HW_TYPE=440HD\nSWVERSION=2.2.8.61\n")]
    assert "different prompts" in propose_dialect(spec(), two)["error"]
    assert "error" in propose_dialect(spec(), [ConsoleFinding("ssh", error="refused")])


def test_a_phone_whose_survey_stops_is_a_problem_not_a_pass(monkeypatch: Any) -> None:
    """Whatever stops a phone's survey thread (here an unset password variable while
    logging in) is one of its problems: the survey cannot pass, or write, that phone."""
    from framework.rig.secrets import SecretError
    from framework.runner import survey

    def stops(*_a: Any, **_k: Any) -> None:
        raise SecretError("HILT_UNSET_PASSWORD is not set")

    monkeypatch.setattr(survey, "probe_console", stops)
    rig = load_rig(ROOT / "rigs" / "sim.yaml")
    spec = rig.phones[0]
    found = survey.PhoneSurvey(spec.name)
    survey._survey_phone(rig, spec, None, found, Path("/nonexistent"), 1, 1.0)  # type: ignore[arg-type]
    assert found.problems == [f"{spec.name}: the survey stopped: SecretError: "
                              f"HILT_UNSET_PASSWORD is not set"]
