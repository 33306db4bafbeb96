"""Which cases changed verdict between two runs (e.g. two firmware releases on one rig)."""

from __future__ import annotations

from dataclasses import dataclass

from framework.records import CaseResult, CertificationDocument


@dataclass(frozen=True)
class VerdictChange:
    case: str
    model: str
    phone: str
    before: str | None
    after: str | None
    reason_after: str


def _key(c: CaseResult) -> tuple[str, str]:
    return c.id, str(c.model)


def diff(a: CertificationDocument, b: CertificationDocument) -> list[VerdictChange]:
    """Cases (by case id and model) whose verdict differs between records a and b."""
    before = {_key(c): c for c in a.cases}
    after = {_key(c): c for c in b.cases}
    changes = []
    for key in sorted(set(before) | set(after)):
        x, y = before.get(key), after.get(key)
        vx = x.verdict if x else None
        vy = y.verdict if y else None
        if vx != vy:
            either = y or x
            changes.append(VerdictChange(key[0], key[1], str(either.phone if either else None),
                                         vx, vy, y.reason if y else ""))
    return changes
