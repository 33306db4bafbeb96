"""`hil rig survey` on the simulated bench: one sim (own prefix) for the whole module.

Three phones: ph1 (2.2.8), ph3 configured as another firmware in the rig file only (its
own prompt, an /etc/release with other keys, no SIP user agent: ``sim.phones.ph3``), ph5
(UC 3.4.6). The sim's boot time is 1.5 s so that the measured trigger -> DHCP times can be
held to 20 % of the configured ones (a 0.3 s boot would be within the noise of a loaded
2-CPU host). Surveys share the lab network, so they run one after another.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from framework.sim.state import list_namespaces
from tests.rig.sim_bench import ROOT, running_sim

pytestmark = [pytest.mark.netns, pytest.mark.timeout(900)]

PREFIX = f"hsv{os.getpid() % 100000}"
BOOT_S = 1.5
OTHER_FIRMWARE = {"prompt": "{model}:{user}> ", "release": "PRODUCT={model}\nVERSION={version}\n"
                  "BUILD=7\n", "sip": False}


def rig_data(prefix: str) -> dict[str, Any]:
    """rigs/sim.yaml with phones ph1, ph3 (another firmware, by rig file) and ph5."""
    data = yaml.safe_load((ROOT / "rigs" / "sim.yaml").read_text())
    data["lab"]["netns"] = f"{prefix}-lab"
    data["sim"]["prefix"] = prefix
    data["sim"]["boot_time_s"] = BOOT_S
    phones = [p for p in data["phones"] if p["name"] in ("ph1", "ph3", "ph5")]
    for i, phone in enumerate(phones, start=1):  # terminal server port i: rig order
        phone["console"]["serial"] = {"url": f"socket://192.0.2.251:{7000 + i}"}
    data["phones"] = phones
    data["sim"]["phones"] = {"ph1": {}, "ph3": dict(OTHER_FIRMWARE), "ph5": {}}
    data["bench"].pop("trigger")  # the survey writes the one every phone has
    data.pop("shell")  # no dialect fields: the survey finds them
    return data


def write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    work = tmp_path_factory.mktemp("survey")
    from tests.rig import sim_bench

    original = sim_bench.sim_rig_text
    sim_bench.sim_rig_text = lambda prefix, phones=2, **_: yaml.safe_dump(  # type: ignore
        rig_data(prefix), sort_keys=False)
    try:
        with running_sim(work, PREFIX) as rig:
            env = {**os.environ, "HIL_SECRETS_FILE": str(work / "secrets.env"),
                   "HIL_RUN_DIR": str(work / "run"), "PYTHONPATH": str(ROOT)}
            yield rig, env
    finally:
        sim_bench.sim_rig_text = original
    assert not [n for n in list_namespaces() if n.startswith(f"{PREFIX}-")]


def hil(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def survey(env: dict[str, str], rig: Path, reports: Path, *extra: str
           ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    proc = hil(env, "rig", "survey", "--rig", str(rig), "--reports", str(reports), *extra)
    found = sorted(reports.glob("*/survey.json"))
    return proc, json.loads(found[-1].read_text()) if found else {}


@pytest.fixture(scope="module")
def surveyed(bench: tuple[Path, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    rig, env = bench
    copy = tmp_path_factory.mktemp("write") / "rig.yaml"
    copy.write_text("# a bench surveyed by test_survey\n" +  # comments --write must keep
                    rig.read_text().replace("lab:\n", "lab:  # the lab side\n", 1))
    proc, report = survey(env, copy, copy.parent / "reports", "--write")
    return proc, report, copy


def phone(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in report["phones"] if p["name"] == name)


def test_survey_finds_each_dialect_and_path(surveyed: Any) -> None:
    proc, report, _ = surveyed
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ph1" in proc.stdout and "check-sync" in proc.stdout  # the table
    ph1, ph3, ph5 = (phone(report, n) for n in ("ph1", "ph3", "ph5"))
    assert ph1["dialect"]["family"] == "2.x" and ph1["dialect"]["firmware"] == "2.2.8.61"
    assert ph5["dialect"]["family"] == "3.x" and ph5["dialect"]["firmware"] == "UC_3.4.6.604.1"
    for p, prompt in ((ph1, "[admin@440HD ~]$ "), (ph5, "[admin@C450HD /home/ipphone]# "),
                      (ph3, "420HD:admin> ")):
        assert {c["shell_prompt"] for c in p["consoles"]} == {prompt}
        assert all(c["mac"] == "00:90:8f:00:00:0" + p["name"][-1] for c in p["consoles"])
        assert all(c["uname"].startswith("Linux") for c in p["consoles"])
    # the other firmware: its prompt and release keys, and no SIP
    assert ph3["dialect"]["release_fields"] == {"model": "PRODUCT", "version": "VERSION"}
    assert "{user}" in ph3["dialect"]["prompt"]
    works = {p["name"]: {c["trigger"] for c in p["control_paths"] if c["works"]}
             for p in (ph1, ph3, ph5)}
    all_paths = {"check-sync", "web-reboot", "shell-reboot", "power-cycle"}
    assert works == {"ph1": all_paths, "ph5": all_paths, "ph3": all_paths - {"check-sync"}}
    assert "SIP NOTIFY" in next(c["error"] for c in ph3["control_paths"]
                                if c["trigger"] == "check-sync")
    for p in (ph1, ph3, ph5):
        assert p["identity"]["option_60"] and p["identity"]["option_55"]
        assert p["identity"]["user_agents"] and p["settings"]["fetched"] is True


def test_survey_timings_within_20_percent_of_the_sims(surveyed: Any) -> None:
    _, report, _ = surveyed
    for p in report["phones"]:
        expected = p["sim_expected"]["to_dhcp_s"]
        for path in p["control_paths"]:
            if not path["works"]:
                continue
            stats = path["to_dhcp_s"]
            assert len(stats["samples"]) == 3 and stats["min"] <= stats["median"] <= stats["max"]
            want = expected[path["trigger"]]
            if want == 0:  # check-sync: no boot; the phone asks for its lease at once
                assert stats["median"] < 0.2 * BOOT_S, (p["name"], path)
            else:
                assert abs(stats["median"] - want) <= 0.2 * want, (p["name"], path, want)
            assert path["to_last_request_s"]["median"] >= stats["median"]


def test_write_keeps_comments_and_cases_pass(surveyed: Any, bench: Any) -> None:
    _, report, copy = surveyed
    _, env = bench
    text = copy.read_text()
    assert copy.with_name("rig.yaml.bak").exists()
    assert f"# hil rig survey {report['run_id']}" in text
    assert text.startswith("# a bench surveyed") and "lab:  # the lab side" in text
    data = yaml.safe_load(text)
    assert data["bench"]["trigger"] in ("web-reboot", "shell-reboot", "power-cycle")
    ph3 = next(p for p in data["phones"] if p["name"] == "ph3")
    assert ph3["shell"]["release_fields"] == {"model": "PRODUCT", "version": "VERSION"}
    assert ph3["surveyed"]["firmware"] == "2.2.8.61"
    # ph5 as if surveyed on another release: `hil run` warns about ph5 only
    stamp = "firmware: UC_3.4.6.604.1\n"
    assert text.count(stamp) == 2  # the phone's expected firmware and its surveyed one
    at = text.index(stamp, text.index("surveyed:", text.index("name: ph5")))
    copy.write_text(text[:at] + "firmware: UC_3.4.7.1\n" + text[at + len(stamp):])
    # a small subset of the matrix, on every phone (the full matrix: see the report)
    run = hil(env, "run", "--rig", str(copy), "--reports", str(copy.parent / "runs"),
              "-k", "t10-1/firmware-tftp or precedence/160]")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    warned = [line for line in run.stderr.splitlines() if "surveyed with" in line]
    assert len(warned) == 1 and "ph5 runs firmware UC_3.4.6.604.1" in warned[0], run.stderr
    # two cases on each of the three phones, every one passed (none failed or broken)
    assert re.search(r"run \S+: 6 passed, 0 failed, 0 broken", run.stdout), run.stdout[-2000:]


@pytest.mark.parametrize("fault", ["unreachable", "wrong-password", "no-check-sync"])
def test_bad_input_one_line_exit_1_nothing_written(fault: str, bench: Any,
                                                  tmp_path: Path) -> None:
    rig, env = bench
    data = yaml.safe_load(rig.read_text())
    ph1 = next(p for p in data["phones"] if p["name"] == "ph1")
    if fault == "unreachable":
        ph1["console"] = {"ssh": {"port": 22, "host": "192.0.2.99"}}  # nobody there
    elif fault == "wrong-password":
        ph1["credentials"]["password"] = {"env": "HIL_SURVEY_WRONG_PASSWORD"}
        env = {**env, "HIL_SURVEY_WRONG_PASSWORD": "not-the-password"}
    else:
        ph1["sip"] = {"port": 5999}  # nothing answers there
        data["bench"]["trigger"] = "check-sync"
    copy = write(tmp_path / "rig.yaml", data)
    before = copy.read_text()
    proc, report = survey(env, copy, tmp_path / "reports", "--phones", "ph1", "--reps", "1",
                          "--write")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert copy.read_text() == before and not copy.with_name("rig.yaml.bak").exists()
    problems = phone(report, "ph1")["problems"]
    assert problems and all("\n" not in p for p in problems)
    assert proc.stdout.count("cannot survey") == 1
    word = {"unreachable": "cannot connect", "wrong-password": "refused",
            "no-check-sync": "check-sync"}[fault]
    assert any(word in p for p in problems), problems
