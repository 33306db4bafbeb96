"""The HTML certification report: one self-contained file rendered from the record.

A matrix per firmware x model x row (case), each cell the verdict with its reason, then
every case with expected and observed requests and its evidence (SHA-256). A run of
``hil explore`` adds its section (``explore/findings.json``): per firmware x model, each
disagreement as its minimal options, what the core expected, what the phone did and how
often it reproduced; apart, the flaky ones (not reproduced in every re-run) with each
attempt's requests; then the inferred behaviour table.

The header and the footer (``<footer id="manifest-digest">``) show the run's evidence
digest (``evidence sha256:<hex>``, framework.report.manifest) and, when the run is signed,
the key's fingerprint: the page cannot show the hash of the manifest that lists it, so it
shows the digest of the record and evidence that manifest binds.

The page is rendered from the Jinja2 templates in ``templates/`` (autoescaped); the
timeline pictures are inline SVG from :mod:`framework.report.timeline`. Each matrix cell
links to its case; observed cases that match the core and those that differ have colours
of their own.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from framework.records import CaseResult, CertificationDocument, assertion_verdict
from framework.report import timeline
from framework.report.manifest import Seal, evidence_digest, seal_of

_COLOURS = timeline.COLOURS
# print (hil report pdf): the matrix alone on page 1 (compact cells); the footer
# #manifest-digest is fixed, so Chromium repeats it on every page, in the bottom padding
# that box-decoration-break:clone gives each page; closed <details> print their content.


def _when(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _column(c: CaseResult) -> tuple[str, str, str]:
    return c.firmware or "?", c.model or "?", c.phone or "?"


def _wire(case: dict[str, Any]) -> str:
    opts = ", ".join(f"{k}={v!r}" for k, v in (case.get("options") or {}).items())
    if case.get("url_option", 160) != 160:
        opts += f" [provisioning/url_option_value={case['url_option']}]"
    return opts or "(no options)"


def _requested(seen: dict[str, Any]) -> str:
    shown = ", ".join(seen.get("requests", [])) or "nothing"
    if seen.get("dns"):
        shown += "; DNS " + ", ".join(str(h) for h in seen["dns"])
    return shown


@cache
def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("framework.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=False, lstrip_blocks=False)
    env.filters.update(when=_when, shade=timeline.shade, anchor=timeline.anchor)
    env.globals.update(colours=_COLOURS, assertion_verdict=assertion_verdict, wire=_wire,
                       requested=_requested)
    return env


def render(doc: CertificationDocument, explore: dict[str, Any] | None = None,
           seal: Seal | None = None) -> str:
    run, cases, summary = doc.run, doc.cases, doc.summary
    rows = list(dict.fromkeys(c.id for c in cases))
    by_case: dict[str, list[CaseResult]] = defaultdict(list)
    for c in cases:
        by_case[c.id].append(c)
    settle = run.settle_s if run.settle_s is not None else None
    grounds = summary.get("by_ground")
    return _env().get_template("certification.html.j2").render(
        run=run, phones=doc.phones, seal=seal, explore=explore, rows=rows, by_case=by_case,
        columns=sorted({_column(c) for c in cases}),
        cell={(c.id, _column(c)): c for c in cases},
        counts=[(k, v) for k, v in summary.items() if isinstance(v, int)],
        grounds=grounds if isinstance(grounds, dict) else None,
        legend=[k for k in _COLOURS if k != "observed"],
        lanes=timeline.lanes_svg(cases),
        timeline=lambda c: timeline.case_svg(c, settle))


def explore_section(doc: dict[str, Any]) -> str:
    """The report section of an exploration, per firmware x model."""
    return _env().get_template("explore.html.j2").render(explore=doc)


def load_explore(run_dir: Path) -> dict[str, Any] | None:
    """The findings of ``hil explore`` in a run directory, if it was an exploration."""
    path = run_dir / "explore" / "findings.json"
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and "groups" in doc else None


def write(doc: CertificationDocument, path: Path, explore: dict[str, Any] | None = None,
          seal: Seal | None = None) -> Path:
    """Write the report; an exploration's findings next to the record are included. The
    seal shown is ``seal``, else the evidence digest of the run directory the report is
    written into (with its manifest's key when that manifest seals the same evidence)."""
    if explore is None:
        explore = load_explore(path.parent)
    if seal is None and (path.parent / "certification.json").exists():
        digest, old = evidence_digest(path.parent), seal_of(path.parent)
        seal = Seal(digest, old.fingerprint if old and old.evidence_digest == digest else None)
    path.write_text(render(doc, explore, seal))
    return path
