"""`hil resolve`: the command-line contract later tooling depends on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from framework.cli import main
from tests.resolution.vectors import ALL, Vector

HIL = [sys.executable, "-m", "framework.cli"]
ROOT = Path(__file__).resolve().parents[2]


def argv_for(vec: Vector) -> list[str]:
    argv = ["resolve", "--model", vec.model, "--mac", vec.mac, "--profile", vec.profile, "--json"]
    for code, value in vec.options.items():
        argv += ["--option-hex", f"{code}={value.hex()}"] if not value.isascii() \
            else ["--option", f"{code}={value.decode()}"]
    return argv


@pytest.mark.parametrize("vec", ALL, ids=[v.id for v in ALL])
def test_json_reproduces_every_manual_vector(vec: Vector, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv_for(vec)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == vec.winner
    assert out["firmware_url"] == vec.firmware_url
    assert out["config_url"] == vec.config_url
    assert out["rule"] == vec.rule
    assert out["explanation"]


def test_as_a_real_process_with_empty_66_and_hex() -> None:
    proc = subprocess.run(
        [*HIL, "resolve", "--model", "440HD", "--mac", "00:11:22:33:44:55", "--option", "66=",
         "--option", "67=abc.img;efg.cfg", "--option-hex", "43=687474703a2f2f6834332f612e696d67",
         "--json"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["source"] == "43" and out["firmware_url"] == "http://h43/a.img"


def test_url_option_override_source_is_the_number() -> None:
    proc = subprocess.run(
        [*HIL, "resolve", "--model", "405HD", "--mac", "001122334455", "--url-option", "224",
         "--option", "224=tftp://192.0.2.1", "--json"], capture_output=True, text=True, cwd=ROOT,
        timeout=60)
    assert json.loads(proc.stdout)["source"] == "224"


def test_readable_output_explains() -> None:
    proc = subprocess.run([*HIL, "resolve", "--model", "440HD", "--mac", "001122334455",
                           "--option", "66=Audiocodes.com"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert proc.returncode == 0
    assert "Table 10-2" in proc.stdout and "tftp://audiocodes.com/440HD.img" in proc.stdout
    # each assertion with its ground (issue 16); a digit-only MAC has no case to check
    assert "- the firmware request: tftp://audiocodes.com/440HD.img [judged; manual: " \
        "Admin Manual 2.2.8, 10.2.2, Table 10-2, row 2" in proc.stdout
    assert "the case of the MAC" not in proc.stdout


@pytest.mark.parametrize(("argv", "message"), [
    (["--model", "440HD"], "Missing option '--mac'"),
    (["--model", "440HD", "--mac", "12"], "MAC '12'"),
    (["--model", "999XX", "--mac", "001122334455"], "model '999XX'"),
    (["--model", "440HD", "--mac", "001122334455", "--option", "66"], "expected CODE=VALUE"),
    (["--model", "440HD", "--mac", "001122334455", "--option", "x=1"], "is not a number"),
    (["--model", "440HD", "--mac", "001122334455", "--option-hex", "43=zz"], "is not hex"),
    (["--model", "440HD", "--mac", "001122334455", "--profile", "9"], "profile '9'"),
    (["--model", "440HD", "--mac", "001122334455", "--url-option", "66"], "url_option 66"),
    (["--model", "440HD", "--mac", "001122334455", "--switch", "mac_case=x"], "mac_case='x'"),
])
def test_bad_arguments_exit_2_with_one_line(argv: list[str], message: str) -> None:
    proc = subprocess.run([*HIL, "resolve", *argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0] and "Traceback" not in proc.stderr
