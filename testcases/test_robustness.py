"""malformed, NUL-padded and over-long options: every case on every phone."""

from __future__ import annotations

from typing import Any

import pytest

from framework.runner.catalogue import ROBUSTNESS


@pytest.mark.parametrize("case", ROBUSTNESS, ids=[c.id for c in ROBUSTNESS])
def test_robustness(case: Any, check: Any) -> None:
    check(case)
