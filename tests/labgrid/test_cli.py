"""`hil lab run | publish | janitor`: bad input is one line on stderr and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _hil(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("LG_")}
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], cwd=ROOT,
                          env={**base, **env}, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("args", "message"), [
    (["lab", "run", "--places", "Model=440HD"], "--places 'Model=440HD' is not TAG=VALUE"),
    (["lab", "run", "--places", "model=440HD", "--rig", "/nonexistent.yaml"],
     "--rig /nonexistent.yaml: no such rig file"),
    (["lab", "run", "--places", "model=440HD", "--rig", "rigs/sim.yaml"],
     "no labgrid coordinator"),
    (["lab", "janitor"], "no labgrid coordinator"),
    (["lab", "publish", "--rig", "/nonexistent.yaml", "--out", "/tmp/hilt-g-cli"],
     "/nonexistent.yaml"),
])
def test_bad_input_is_one_clear_line(args: list[str], message: str) -> None:
    res = _hil(*args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_publish_writes_exporter_config_and_places(tmp_path: Path) -> None:
    res = _hil("lab", "publish", "--rig", "rigs/example-labgrid.yaml", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "places.yaml").exists()
    exporters = sorted(p.name for p in tmp_path.glob("exporter-*.yaml"))
    assert exporters == ["exporter-lab-host-1.yaml"]
