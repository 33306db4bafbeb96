"""Table 10-2 (Option 66/67), Admin Manual 2.2.8 10.2.2: every case on every phone."""

from __future__ import annotations

from typing import Any

import pytest

from framework.runner.catalogue import TABLE_10_2


@pytest.mark.parametrize("case", TABLE_10_2, ids=[c.id for c in TABLE_10_2])
def test_table_10_2(case: Any, check: Any) -> None:
    check(case)
