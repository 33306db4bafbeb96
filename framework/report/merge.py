"""One certification record across rigs: the records of several runs, merged.

The merged document keeps the key names of certification.json (``run``, ``phones``,
``cases``, ``summary``), so every rendering (``hil report html``, ``diff``) reads it.
Each phone and case is tagged with ``rig`` and ``place`` (the labgrid place, or the rig
name when the run had none) and keeps its own name in ``rig_phone``; ``phone`` becomes
``PLACE/PHONE`` so two benches' ``ph1`` never merge into one column. ``run.runs`` lists the
source runs (id, rig, place, status, times, directory) and ``run.places`` what happened on
places that did not run (skipped by a failed health check, errors).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.records import (
    CaseResult,
    CertificationDocument,
    PhoneRecord,
    RunRecord,
    atomic_write,
    dumps,
    summarise,
)


@dataclass(frozen=True)
class SourceRun:
    """One run to merge: its record and the labgrid place it ran on (None: the rig name)."""

    record: CertificationDocument
    place: str | None = None
    path: Path | None = None


def merge(sources: Sequence[SourceRun], *, run_id: str,
          places: Iterable[Mapping[str, Any]] = ()) -> CertificationDocument:
    """The merged record of ``sources``; ValueError when two sources claim one place."""
    seen: dict[str, str] = {}
    runs: list[dict[str, Any]] = []
    phones: list[PhoneRecord] = []
    cases: list[CaseResult] = []
    for src in sources:
        run = src.record.run
        rig = run.rig or "?"
        place = src.place or rig
        if place in seen:
            raise ValueError(f"two runs for place {place!r}: {seen[place]} and {run.id}")
        seen[place] = run.id
        runs.append({"id": run.id, "rig": rig, "place": place,
                     "status": run.status, "start": run.start,
                     "end": run.end, "framework_revision": run.framework_revision,
                     "host": run.host, "path": str(src.path) if src.path else None,
                     "summary": summarise(src.record.cases)})
        for p in src.record.phones:
            phones.append(p.amended(rig=rig, place=place, rig_phone=p.name,
                                    name=f"{place}/{p.name}"))
        for c in src.record.cases:
            cases.append(c.amended(rig=rig, place=place, rig_phone=c.phone,
                                   phone=f"{place}/{c.phone}"))
    starts = [r["start"] for r in runs if r.get("start")]
    ends = [r["end"] for r in runs if r.get("end")]
    revisions = sorted({str(r.get("framework_revision")) for r in runs})
    statuses = {str(r.get("status")) for r in runs}
    merged = RunRecord(
        id=run_id, kind="merged", rig=", ".join(sorted({r["rig"] for r in runs})),
        framework_revision=", ".join(revisions), start=min(starts, default=None),
        end=max(ends, default=None),
        status="finished" if statuses <= {"finished"} and runs else
        ", ".join(sorted(statuses)) or "nothing ran",
        merged_at=time.time(), runs=runs, places=[dict(p) for p in places])
    return CertificationDocument(run=merged, phones=phones, cases=cases,
                                 summary=summarise(cases))


def write_merged(doc: CertificationDocument, out_dir: Path) -> Path:
    """Write ``certification.json`` (atomically) and ``certification.html`` into out_dir."""
    from framework.report import html

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "certification.json"
    atomic_write(path, dumps(doc))
    html.write(doc, out_dir / "certification.html")
    return path
