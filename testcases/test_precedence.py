"""Option 160 > 66/67 > 43, fall-through, and the URL option override: every case on every phone."""

from __future__ import annotations

from typing import Any

import pytest

from framework.runner.catalogue import PRECEDENCE


@pytest.mark.parametrize("case", PRECEDENCE, ids=[c.id for c in PRECEDENCE])
def test_precedence(case: Any, check: Any) -> None:
    check(case)
