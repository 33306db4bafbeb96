"""Start the simulated bench (framework.sim, ``hil sim up``) for a test, with its own prefix.

The rig file is rigs/sim.yaml with the test's namespace prefix, the phones a test asks
for, and secrets in a private secrets file; ``hil sim down`` runs on exit even if the
test failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def sim_rig_text(prefix: str, phones: int = 2, **phone_overrides: dict[str, Any]) -> str:
    """rigs/sim.yaml for namespace ``prefix`` with the first ``phones`` phones.

    ``phone_overrides[name]`` updates that phone's rig entry (e.g. a wrong firmware).
    """
    data = yaml.safe_load((ROOT / "rigs" / "sim.yaml").read_text())
    data["lab"]["netns"] = f"{prefix}-lab"
    data["sim"]["prefix"] = prefix
    data["phones"] = data["phones"][:phones]
    for phone in data["phones"]:
        phone.update(phone_overrides.get(phone["name"], {}))
    names = {p["name"] for p in data["phones"]}
    data["sim"]["phones"] = {k: v for k, v in data["sim"]["phones"].items() if k in names}
    return yaml.safe_dump(data, sort_keys=False)


def _hil(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "framework.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=90)


@contextmanager
def running_sim(workdir: Path, prefix: str, phones: int = 2) -> Iterator[Path]:
    """Bring the sim up from a derived rig file; yield that file; bring it down.

    Secrets live in ``workdir/secrets.env``: point ``HIL_SECRETS_FILE`` there to resolve them.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    rig = workdir / "rig.yaml"
    rig.write_text(sim_rig_text(prefix, phones))
    env = {**os.environ, "HIL_SECRETS_FILE": str(workdir / "secrets.env"),
           "HIL_RUN_DIR": str(workdir / "run")}
    up = _hil("sim", "up", "--rig", str(rig), env=env)
    try:
        if up.returncode != 0:
            raise RuntimeError(f"hil sim up failed ({up.returncode}): {up.stderr or up.stdout}")
        yield rig
    finally:
        down = _hil("sim", "down", "--rig", str(rig), env=env)
        if down.returncode != 0:
            print(f"hil sim down failed: {down.stderr}", file=sys.stderr)
