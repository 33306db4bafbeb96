"""HIL test cases: every case of framework.runner.catalogue on every phone of the rig.

Run: ``pytest testcases --rig rigs/sim.yaml`` (or ``hil run``). Options: see
``pytest --help`` under "400HD hardware-in-the-loop lab".
"""

from __future__ import annotations

from typing import Any

import pytest

from framework.pytest_plugin import report_case
from framework.runner.catalogue import Case


@pytest.fixture
def check(hil_lab: Any, hil_phone: str) -> Any:
    """``check(case)``: the verdict of ``case`` on this test's phone, as the test outcome."""

    def _check(case: Case) -> None:
        report_case(hil_lab, case, hil_phone)

    return _check
