"""The import contracts of pyproject.toml hold, and an upward import breaks them.

The contracts (import-linter, run by `make lint` before the suite) say that dependencies
point down the layers of framework/ (README's layout table; each package's docstring says
the same in words), that the virtual firmware never imports the resolution core, and that
the renderers never import the runner. A contract that nothing could break would prove
nothing, so the second test plants one upward import in a copy of the package and expects
lint-imports to fail naming that contract and that import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

LAYERS = "Layers: each package imports only from its own layer or below"
SIM_INDEPENDENT = "The virtual firmware is independent: framework.sim never imports framework.resolution"
REPORT_NOT_RUNNER = "Reports render records: framework.report never imports framework.runner"


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the pyproject.toml in ``cwd``, importing ``framework`` from there."""
    assert LINT_IMPORTS.exists(), f"{LINT_IMPORTS}: install the dev extra (pip install -e '.[dev]')"
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_repository_keeps_its_import_contracts() -> None:
    proc = _lint(ROOT)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in (LAYERS, SIM_INDEPENDENT, REPORT_NOT_RUNNER):
        assert f"{name} KEPT" in out, out


@pytest.mark.parametrize(("module", "source", "contract", "shown"), [
    ("rig/upward.py", "import framework.runner\n", LAYERS,
     "framework.rig.upward -> framework.runner"),
    ("errors.py", "from framework.rig import load_rig\n", LAYERS,
     "framework.errors -> framework.rig"),
    ("sim/core_peek.py", "from framework.resolution import resolve\n", SIM_INDEPENDENT,
     "framework.sim.core_peek -> framework.resolution"),
    ("report/runner_peek.py", "def f() -> None:\n    import framework.runner.verdict\n",
     REPORT_NOT_RUNNER, "framework.report.runner_peek -> framework.runner.verdict"),
], ids=["rig-imports-runner", "bottom-imports-rig", "sim-imports-resolution",
        "report-imports-runner"])
def test_a_planted_upward_import_breaks_its_contract(tmp_path: Path, module: str, source: str,
                                                     contract: str, shown: str) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "framework", tmp_path / "framework",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    planted = tmp_path / "framework" / module
    before = planted.read_text() if planted.exists() else \
        '"""Planted by tests/test_import_contracts.py."""\n'
    planted.write_text(before + "\n" + source)
    proc = _lint(tmp_path)
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0, out
    assert f"{contract} BROKEN" in out, out
    assert shown in out, out
