"""Table 10-1 (Option 160), Admin Manual 2.2.8 10.2.1: every case on every phone."""

from __future__ import annotations

from typing import Any

import pytest

from framework.runner.catalogue import TABLE_10_1


@pytest.mark.parametrize("case", TABLE_10_1, ids=[c.id for c in TABLE_10_1])
def test_table_10_1(case: Any, check: Any) -> None:
    check(case)
