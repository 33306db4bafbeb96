"""The README documents every switch and every rule family, so the docs cannot drift."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from framework.resolution import RULES, Interpretation

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("switch", [f.name for f in dataclasses.fields(Interpretation)])
def test_every_switch_is_documented_with_its_default(switch: str) -> None:
    default = getattr(Interpretation(), switch)
    rows = [line for line in README.splitlines() if line.startswith(f"| `{switch}` |")]
    assert rows, f"README has no row for switch {switch}"
    shown = "none" if default is None else f"`{default}`"
    assert shown in rows[0], f"README row for {switch} does not show its default {default!r}"


@pytest.mark.parametrize("rule", sorted({r.split("/x-")[0] if "/x-" in r else r for r in RULES}))
def test_every_rule_is_documented(rule: str) -> None:
    assert f"`{rule}" in README or (rule.startswith("T10-2") and "`T10-2/x-*`" in README)
