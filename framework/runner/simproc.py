"""The simulated bench as a process the runner starts and stops: ``python -m framework.sim``.

The runner never imports the sim (it drives it like a bench it does not own): it asks
whether the rig's sim is up (``status --json``), starts it when it is not (``up``) and
stops only a sim it started itself (``down``). A sim already running (someone else's run,
or a killed one) is used and left up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from framework.errors import RigFault

ROOT = Path(__file__).resolve().parents[2]
STATUS_TIMEOUT_S = 60
UP_DOWN_TIMEOUT_S = 120


class SimProcess:
    """A handle on the simulated rig of one rig file."""

    def __init__(self, rig_path: Path) -> None:
        self.rig_path = rig_path
        self.started = False  # by us: then `down` is ours to run

    def _sim(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "framework.sim", *args, "--rig",
                               str(self.rig_path)], capture_output=True, text=True, cwd=ROOT,
                              timeout=timeout)

    def running(self) -> bool:
        proc = self._sim("status", "--json", timeout=STATUS_TIMEOUT_S)
        try:
            return bool(json.loads(proc.stdout).get("running"))
        except (json.JSONDecodeError, AttributeError):
            return False

    def up(self) -> None:
        """Start the sim unless it runs already; a start that fails is a rig fault."""
        if self.running():
            return
        proc = self._sim("up", timeout=UP_DOWN_TIMEOUT_S)
        if proc.returncode != 0:
            raise RigFault("simulated rig did not start: " +
                           (proc.stderr.strip().splitlines() or ["(no message)"])[-1])
        self.started = True

    def down(self) -> None:
        """Stop the sim if this handle started it."""
        if self.started:
            self._sim("down", timeout=UP_DOWN_TIMEOUT_S)
            self.started = False
