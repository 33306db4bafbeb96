"""Which cases changed verdict between two runs (e.g. two firmware releases on one rig)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class VerdictChange:
    case: str
    model: str
    phone: str
    before: str | None
    after: str | None
    reason_after: str


def _key(c: dict[str, Any]) -> tuple[str, str]:
    return c["id"], str(c.get("model"))


def diff(a: dict[str, Any], b: dict[str, Any]) -> list[VerdictChange]:
    """Cases (by case id and model) whose verdict differs between records a and b."""
    before = {_key(c): c for c in a["cases"]}
    after = {_key(c): c for c in b["cases"]}
    changes = []
    for key in sorted(set(before) | set(after)):
        x, y = before.get(key), after.get(key)
        vx = x.get("verdict") if x else None
        vy = y.get("verdict") if y else None
        if vx != vy:
            changes.append(VerdictChange(key[0], key[1], str((y or x or {}).get("phone")), vx, vy,
                                         str((y or {}).get("reason", ""))))
    return changes
