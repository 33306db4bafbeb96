"""Where the framework finds its case modules, its rig files and its reports directory.

From a checkout (an editable install, or ``PYTHONPATH`` at the repository root) they are the
repository's top-level ``testcases/``, ``rigs/`` and ``reports/``. An installed wheel ships
``testcases/`` as the package ``hil400hd_testcases`` and ``rigs/`` as ``hil400hd_rigs``
(pyproject.toml maps the top-level directories into the wheel: they stay where they are in
the repository), found with importlib; its runs write ``reports/`` under the current
directory (site-packages is no place for them).

Lowest layer: imports nothing of the framework.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

#: The repository root when the framework runs from a checkout (framework/ is beside it).
CHECKOUT = Path(__file__).resolve().parents[1]
CASES_PACKAGE = "hil400hd_testcases"
RIGS_PACKAGE = "hil400hd_rigs"


def in_checkout() -> bool:
    """Does the framework run from a repository checkout (testcases/ and rigs/ beside it)?"""
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "testcases").is_dir() \
        and (CHECKOUT / "rigs").is_dir()


def _package_dir(name: str, fallback: str) -> Path:
    if not in_checkout():
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            return Path(next(iter(spec.submodule_search_locations)))
    return CHECKOUT / fallback


def testcases_dir() -> Path:
    """The case modules ``hil run`` hands to pytest (``pytest --pyargs hil400hd_testcases``
    when installed)."""
    return _package_dir(CASES_PACKAGE, "testcases")


def rigs_dir() -> Path:
    """The shipped rig files (sim.yaml, the examples)."""
    return _package_dir(RIGS_PACKAGE, "rigs")


def default_rig() -> Path:
    """The simulated rig: the default of every ``--rig``."""
    return rigs_dir() / "sim.yaml"


def default_reports() -> Path:
    """Where runs write their records by default: the checkout's reports/, else ./reports."""
    return CHECKOUT / "reports" if in_checkout() else Path.cwd() / "reports"


#: The defaults as command-line options show them (computed once, at import).
DEFAULT_RIG = default_rig()
DEFAULT_REPORTS = default_reports()
