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
"""

from __future__ import annotations

import html
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from framework.records import CaseResult, CertificationDocument, assertion_verdict
from framework.report.manifest import Seal, evidence_digest, seal_of

_COLOURS = {"passed": "#2e7d32", "failed": "#c62828", "broken": "#ef6c00",
            "observed": "#1565c0", "skipped": "#757575"}

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{margin-bottom:.2em} .meta{color:#555;margin-bottom:1em}
table{border-collapse:collapse;margin:.6em 0 1.4em} th,td{border:1px solid #ccc;padding:.25em .5em;
font-size:13px;vertical-align:top;text-align:left} th{background:#f3f3f3}
td.v{color:#fff;font-weight:600;text-align:center} .sum span{margin-right:1.2em}
code{font-size:12px} details{margin:.3em 0} .reason{color:#444}
@media print{
@page{size:A4;margin:10mm 10mm 14mm}
body{margin:0;padding-bottom:7mm;box-decoration-break:clone;-webkit-box-decoration-break:clone;
print-color-adjust:exact;-webkit-print-color-adjust:exact;font-variant-ligatures:none}
#matrix{break-after:page} #matrix th,#matrix td{font-size:9px;padding:0 4px;line-height:1.2}
#manifest-digest{position:fixed;bottom:0;left:0;right:0;margin:0;font:8px monospace;color:#333}
details::details-content{content-visibility:visible;display:block}
}
"""
# print (hil report pdf): the matrix alone on page 1 (compact cells); the footer
# #manifest-digest is fixed, so Chromium repeats it on every page, in the bottom padding
# that box-decoration-break:clone gives each page; closed <details> print their content.


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _when(ts: Any) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def _column(c: CaseResult) -> tuple[str, str, str]:
    return c.firmware or "?", c.model or "?", c.phone or "?"


def _seal_html(seal: Seal | None) -> str:
    if seal is None:
        return "evidence sha256: not computed (no run directory)"
    out = f"evidence <code>sha256:{_esc(seal.evidence_digest)}</code>"
    if seal.fingerprint:
        out += (f" · signed by key <code title='{_esc(seal.fingerprint)}'>"
                f"{_esc(seal.fingerprint[:16])}</code>")
    return out


def render(doc: CertificationDocument, explore: dict[str, Any] | None = None,
           seal: Seal | None = None) -> str:
    run, phones, cases, summary = doc.run, doc.phones, doc.cases, doc.summary
    columns = sorted({_column(c) for c in cases})
    rows = list(dict.fromkeys(c.id for c in cases))
    cell: dict[tuple[str, tuple[str, str, str]], CaseResult] = {}
    for c in cases:
        cell[(c.id, _column(c))] = c
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>Certification "
           f"{_esc(run.id)}</title><style>{_CSS}</style></head><body>"]
    out.append(f"<h1>400HD provisioning certification</h1><div class='meta'>run "
               f"<code>{_esc(run.id)}</code> · rig {_esc(run.rig)} · framework "
               f"{_esc(run.framework_revision)} · {_when(run.start)} → "
               f"{_when(run.end)} · status {_esc(run.status)}</div>"
               f"<div class='meta' id='evidence-digest'>{_seal_html(seal)}</div>")
    out.append("<div class='sum' id='summary'>" + "".join(
        f"<span style='color:{_COLOURS.get(k, '#000')}'>{_esc(k)}: <b>{v}</b></span>"
        for k, v in summary.items() if isinstance(v, int)) + "</div>")
    grounds = summary.get("by_ground")
    if isinstance(grounds, dict):  # assertions per ground kind and verdict (issue 16)
        out.append("<div class='sum' id='by-ground'>" + " · ".join(
            f"{_esc(kind)}: " + ", ".join(f"{_esc(v)} <b>{n}</b>" for v, n in counts.items())
            for kind, counts in grounds.items()) + "</div>")
    out.append("<h2>Phones</h2><table><tr><th>phone</th><th>model</th><th>MAC</th>"
               "<th>firmware</th><th>profile</th><th>state</th></tr>")
    for p in phones:
        out.append(f"<tr><td>{_esc(p.name)}</td><td>{_esc(p.model)}</td>"
                   f"<td><code>{_esc(p.mac)}</code></td><td>{_esc(p.firmware)}</td>"
                   f"<td>{_esc(p.profile)}</td><td>{_esc(p.state)}"
                   f"{(' — ' + _esc(p.broken_reason)) if p.broken_reason else ''}"
                   "</td></tr>")
    out.append("</table>")
    out.append("<h2>Matrix (firmware × model × row)</h2><table id='matrix'><tr><th>case</th>")
    for fw, model, phone in columns:
        out.append(f"<th>{_esc(fw)}<br>{_esc(model)}<br><small>{_esc(phone)}</small></th>")
    out.append("</tr>")
    for row in rows:
        out.append(f"<tr><th><a href='#{_esc(row)}'>{_esc(row)}</a></th>")
        for col in columns:
            hit = cell.get((row, col))
            if hit is None:
                out.append("<td>—</td>")
                continue
            v = hit.verdict
            out.append(f"<td class='v' data-verdict='{_esc(v)}' title='{_esc(hit.reason)}' "
                       f"style='background:{_COLOURS.get(v, '#000')}'>{_esc(v)}</td>")
        out.append("</tr>")
    out.append("</table><h2>Cases</h2>")
    by_case: dict[str, list[CaseResult]] = defaultdict(list)
    for c in cases:
        by_case[c.id].append(c)
    for row in rows:
        out.append(f"<h3 id='{_esc(row)}'>{_esc(row)}</h3>")
        for c in by_case[row]:
            out.append(_case_block(c))
    if explore is not None:
        out.append(explore_section(explore))
    out.append(f"<footer id=\"manifest-digest\" class='meta'>{_seal_html(seal)}</footer>")
    out.append("</body></html>")
    return "\n".join(out)


def load_explore(run_dir: Path) -> dict[str, Any] | None:
    """The findings of ``hil explore`` in a run directory, if it was an exploration."""
    path = run_dir / "explore" / "findings.json"
    if not path.exists():
        return None
    import json

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and "groups" in doc else None


def _wire(case: dict[str, Any]) -> str:
    opts = ", ".join(f"{k}={v!r}" for k, v in (case.get("options") or {}).items())
    if case.get("url_option", 160) != 160:
        opts += f" [provisioning/url_option_value={case['url_option']}]"
    return opts or "(no options)"


def explore_section(doc: dict[str, Any]) -> str:
    """The report section of an exploration, per firmware x model."""
    e = doc.get("explore", {})
    out = [f"<h2 id='explore'>Differential exploration</h2><div class='meta'>seed "
           f"{_esc(e.get('seed'))} · {_esc(e.get('generated'))} generated cases · "
           f"{_esc(e.get('phone_runs'))} phone runs (boots) · shrink budget "
           f"{_esc(e.get('shrink_budget'))} runs per finding · {_esc(e.get('confirm'))} "
           f"confirmations</div>"]
    for g in doc.get("groups", []):
        findings = g.get("findings", [])
        out.append(f"<h3>Firmware {_esc(g.get('firmware'))} × {_esc(g.get('model'))}</h3>"
                   f"<div class='meta'>phones {_esc(', '.join(g.get('phones', [])))} · profile "
                   f"{_esc(g.get('profile'))} · {_esc(g.get('trials'))} trials, "
                   f"{_esc(g.get('broken'))} broken, {len(findings)} findings (each "
                   f"reproduced in every re-run), {len(g.get('flaky', []))} flaky</div>")
        if findings:
            out.append("<table class='findings'><tr><th>#</th><th>finding</th>"
                       "<th>minimal options</th><th>core expected</th><th>phone requested</th>"
                       "<th>differences</th><th>reproduced</th></tr>")
            for i, f in enumerate(findings, 1):
                exp = f.get("expected") or {}
                obs = f.get("observed") or {}
                requested = ", ".join(obs.get("requests", [])) or "nothing"
                if obs.get("dns"):
                    requested += "; DNS " + ", ".join(str(h) for h in obs["dns"])
                size = f.get("minimal_size", {})
                out.append(
                    f"<tr><td>{i}</td><td><b>{_esc(f.get('kind'))}</b>: {_esc(f.get('about'))}"
                    f"</td><td><code>{_esc(f.get('minimal_template'))}</code><br><small>on the "
                    f"wire <code>{_esc(_wire(f.get('minimal') or {}))}</code> · "
                    f"{_esc(size.get('options'))} options, {_esc(size.get('bytes'))} bytes · "
                    f"shrunk in {_esc(f.get('shrink_steps'))} steps</small></td>"
                    f"<td>{_esc(exp.get('rule'))} ({_esc(exp.get('promise'))})<br>firmware "
                    f"<code>{_esc(exp.get('firmware_url'))}</code><br>configuration "
                    f"<code>{_esc(exp.get('config_url'))}</code></td>"
                    f"<td><code>{_esc(requested)}</code></td>"
                    f"<td>{_esc('; '.join(f.get('differences', [])) or '-')}</td>"
                    f"<td>{_esc(f.get('reproduced'))}/{_esc(f.get('confirm_runs'))}<br><small>"
                    f"seen in {_esc(f.get('occurrences'))} cases"
                    f"{'<br>' + _esc(f.get('note')) if f.get('note') else ''}</small></td></tr>")
            out.append("</table>")
        out.append(_flaky_table(g.get("flaky", [])))
        rows = g.get("behaviour", [])
        if rows:
            out.append("<table class='behaviour'><tr><th>switch</th><th>profile</th>"
                       "<th>phone (inferred)</th><th>evidence</th></tr>")
            for r in rows:
                changed = bool(r.get("changed"))
                evidence = (f"{r.get('for_inferred')} of {r.get('mattered')} cases where it "
                            f"mattered" if changed else "")
                out.append(f"<tr><td><code>{_esc(r.get('switch'))}</code></td>"
                           f"<td>{_esc(r.get('profile_value'))}</td><td>"
                           f"{'<b>' if changed else ''}{_esc(r.get('inferred_value'))}"
                           f"{' (differs)</b>' if changed else ''}</td>"
                           f"<td>{_esc(evidence)}</td></tr>")
            out.append("</table>")
    return "\n".join(out)


def _flaky_table(flaky: list[dict[str, Any]]) -> str:
    """Disagreements that did not reproduce: not findings; each attempt is the evidence."""
    if not flaky:
        return ""
    rows = ["<h4>Flaky (not reproduced in every re-run; not findings)</h4>"
            "<table class='flaky'><tr><th>#</th><th>disagreement</th><th>input</th>"
            "<th>reproduced</th><th>attempts: what the phone requested</th></tr>"]
    for i, f in enumerate(flaky, 1):
        attempts = []
        for n, a in enumerate(f.get("attempts", []), 1):
            shown = ", ".join(a.get("requests", [])) or "nothing"
            if a.get("dns"):
                shown += "; DNS " + ", ".join(str(h) for h in a["dns"])
            if a.get("broken"):
                shown += f"; broken: {a['broken']}"
            attempts.append(f"{n}. {'shows it' if a.get('shows') else 'does not'}: "
                            f"<code>{_esc(shown)}</code>")
        rows.append(f"<tr><td>{i}</td><td><b>{_esc(f.get('kind'))}</b>: {_esc(f.get('about'))}"
                    f"</td><td><code>{_esc(f.get('minimal_template'))}</code></td>"
                    f"<td>{_esc(f.get('reproduced'))}/{_esc(f.get('confirm_runs'))}</td>"
                    f"<td>{'<br>'.join(attempts)}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _case_block(c: CaseResult) -> str:
    v = c.verdict
    agreement = ""
    if v == "observed" and c.matches_core is not None:
        agreement = (" <i class='agrees'>matches the core</i>" if c.matches_core
                     else " <i class='differs'>differs from the core</i>")
    parts = [f"<details><summary><b style='color:{_COLOURS.get(v, '#000')}'>{_esc(v)}</b>"
             f"{agreement} {_esc(c.phone)} ({_esc(c.model)}, {_esc(c.firmware)}) — "
             f"<span class='reason'>{_esc(c.reason)}</span></summary>"]
    parts.append("<table><tr><th>option</th><th>value</th></tr>" + "".join(
        f"<tr><td>{_esc(k)}</td><td><code>{_esc(val)}</code></td></tr>"
        for k, val in c.options.items()) + "</table>")
    exp = c.expected or {}
    parts.append(f"<p>expected (rule <code>{_esc(exp.get('rule'))}</code>, "
                 f"{_esc(exp.get('promise'))}): firmware <code>{_esc(exp.get('firmware_url'))}"
                 f"</code>, configuration <code>{_esc(exp.get('config_url'))}</code></p>")
    if c.assertions:  # each expectation next to its ground (issue 16)
        parts.append(_assertions_table(c))
    if c.notes:
        parts.append("<ul class='notes'>" + "".join(
            f"<li>note: {_esc(n)}</li>" for n in c.notes) + "</ul>")
    parts.append("<table><tr><th>time</th><th>protocol</th><th>URL / name</th><th>outcome</th>"
                 "</tr>" + "".join(
                     f"<tr><td>{_esc(round(o.time - (c.start or 0), 3))}</td>"
                     f"<td>{_esc(o.protocol)}</td><td><code>{_esc(o.url or o.host)}"
                     f"</code></td><td>{_esc(o.outcome)}</td></tr>" for o in c.observed)
                 + "</table>")
    if c.evidence:
        parts.append("<ul>" + "".join(
            f"<li><a href='{_esc(e.path)}'>{_esc(e.path)}</a> "
            f"({_esc(e.kind)}, {_esc(e.bytes)} bytes, sha256 "
            f"<code>{_esc(e.sha256)}</code>)</li>" for e in c.evidence) + "</ul>")
    parts.append("</details>")
    return "".join(parts)


def _assertions_table(c: CaseResult) -> str:
    rows = ["<table class='assertions'><tr><th>assertion</th><th>expected</th><th>outcome</th>"
            "<th>ground</th><th>source and quote</th></tr>"]
    for a in c.assertions or []:
        outcome = assertion_verdict(c, a)
        held = "holds" if a.holds else f"does not hold: {a.detail}"
        rows.append(f"<tr><td>{_esc(a.what)}</td><td><code>{_esc(a.expected)}</code></td>"
                    f"<td><b style='color:{_COLOURS.get(outcome, '#000')}'>{_esc(outcome)}"
                    f"</b> ({_esc(held)})</td><td>{_esc(a.ground.kind)}</td>"
                    f"<td>{_esc(a.ground.source)}: <q>{_esc(a.ground.quote)}</q></td></tr>")
    rows.append("</table>")
    return "".join(rows)


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
