"""Failure paths (observed, with timings) and HTTPS refusal (judged): every case on every
phone, each under its lab condition (framework.runner.failures)."""

from __future__ import annotations

from typing import Any

import pytest

from framework.runner.failures import FAILURE_PATHS, HTTPS_REFUSAL_CASES


@pytest.mark.parametrize("case", FAILURE_PATHS, ids=[c.id for c in FAILURE_PATHS])
def test_failure_path(case: Any, check: Any) -> None:
    check(case)


@pytest.mark.parametrize("case", HTTPS_REFUSAL_CASES, ids=[c.id for c in HTTPS_REFUSAL_CASES])
def test_https_refusal(case: Any, check: Any) -> None:
    check(case)
