"""The findings file and report section of an exploration.

``explore/findings.json`` (machine-readable, one object per firmware x model), a Markdown
section ``explore/findings.md`` per firmware x model (each finding: the minimal options,
what the core expected, what the phone did, how often it reproduced; then, apart, the
*flaky* disagreements that did not reproduce in every re-run, with each attempt's
requests; then the inferred behaviour table), and one inferred profile per firmware x model in
``explore/profiles/<firmware>-<model>.json`` that ``Profile.from_dict`` loads
(``hil explore --profile FILE`` and the next regression run can use it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from framework.explore.engine import ExploreConfig, GroupResult, Progress


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text)


def document(groups: Sequence[GroupResult], config: ExploreConfig, progress: Progress,
             meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "explore": {**meta, "seed": config.seed, "budget": config.budget,
                    "time_s": config.time_s, "shrink_budget": config.shrink_budget,
                    "confirm": config.confirm, "extra_names": config.extra_names,
                    "generated": progress.generated, "phone_runs": progress.phone_runs,
                    "disagreements": progress.disagreements, "elapsed_s": progress.elapsed_s},
        "groups": [g.to_dict() for g in groups],
    }


def write(directory: Path, doc: dict[str, Any]) -> dict[str, Path]:
    """Write the findings file, the report section and the inferred profiles."""
    directory.mkdir(parents=True, exist_ok=True)
    out = {"findings": directory / "findings.json", "report": directory / "findings.md"}
    out["findings"].write_text(json.dumps(doc, indent=1, sort_keys=True))
    out["report"].write_text(markdown(doc))
    profiles = directory / "profiles"
    profiles.mkdir(exist_ok=True)
    for g in doc["groups"]:
        path = profiles / f"{_safe(g['firmware'])}-{_safe(g['model'])}.json"
        path.write_text(json.dumps(g["inferred_profile"], indent=1, sort_keys=True))
        out[f"profile {g['firmware']} {g['model']}"] = path
    return out


def _opts(case: dict[str, Any]) -> str:
    opts = ", ".join(f"{k}={v!r}" for k, v in case["options"].items()) or "(no options)"
    if case.get("url_option", 160) != 160:
        opts += f"  [provisioning/url_option_value={case['url_option']}]"
    return opts


def _requested(f: dict[str, Any]) -> str:
    text = ", ".join(f"`{u}`" for u in f["observed"]["requests"]) or "nothing"
    if f["observed"]["dns"]:
        text += "; DNS " + ", ".join(str(h) for h in f["observed"]["dns"])
    return text


def _flaky(flaky: list[dict[str, Any]]) -> list[str]:
    """Disagreements that did not reproduce: listed apart, each attempt's requests shown."""
    if not flaky:
        return []
    lines = ["### Flaky (not reproduced in every re-run; not findings)", ""]
    for i, f in enumerate(flaky, 1):
        lines += [f"{i}. {f['kind']}: {f['about']}, input `{f['minimal_template']}`: "
                  f"reproduced {f['reproduced']}/{f['confirm_runs']}; seen in "
                  f"{f['occurrences']} generated cases"]
        for n, a in enumerate(f.get("attempts", []), 1):
            shown = ", ".join(f"`{u}`" for u in a["requests"]) or "nothing"
            if a.get("dns"):
                shown += "; DNS " + ", ".join(str(h) for h in a["dns"])
            if a.get("broken"):
                shown += f"; broken: {a['broken']}"
            lines.append(f"   - attempt {n}: {'shows it' if a['shows'] else 'does not'}: "
                         f"requested {shown}")
    return [*lines, ""]


def markdown(doc: dict[str, Any]) -> str:
    e = doc["explore"]
    lines = ["# Differential exploration", "",
             f"seed {e['seed']}, {e['generated']} generated cases, {e['phone_runs']} phone runs "
             f"(boots), {e['elapsed_s']:.0f} s; shrink budget {e['shrink_budget']} runs per "
             f"finding, {e['confirm']} confirmations", ""]
    for g in doc["groups"]:
        lines += [f"## Firmware {g['firmware']} x {g['model']} (phones {', '.join(g['phones'])}; "
                  f"profile {g['profile']})", "",
                  f"{g['trials']} trials, {g['broken']} broken, {len(g['findings'])} findings "
                  f"(each reproduced in every re-run), {len(g.get('flaky', []))} flaky.", ""]
        for i, f in enumerate(g["findings"], 1):
            exp = f["expected"] or {}
            lines += [f"### {i}. {f['kind']}: {f['about']}", "",
                      f"- minimal options: `{f['minimal_template']}`, on the wire "
                      f"`{_opts(f['minimal'])}` "
                      f"({f['minimal_size']['options']} options, {f['minimal_size']['bytes']} "
                      f"bytes; shrunk in {f['shrink_steps']} steps, {f['shrink_runs']} runs"
                      f"{', budget exhausted' if f['shrink_exhausted'] else ''})",
                      f"- core expected ({exp.get('rule')}, {exp.get('promise')}): firmware "
                      f"`{exp.get('firmware_url')}`, configuration `{exp.get('config_url')}`",
                      f"- phone requested: {_requested(f)}",
                      f"- differences: {'; '.join(f['differences']) or '-'}",
                      f"- reproduced {f['reproduced']}/{f['confirm_runs']}; seen in "
                      f"{f['occurrences']} generated cases"]
            lines += ([f"- note: {f['note']}"] if f.get("note") else []) + [""]
        lines += _flaky(g.get("flaky", []))
        lines += ["### Inferred behaviour", "", "| switch | profile | phone | evidence |",
                  "|---|---|---|---|"]
        for r in g["behaviour"]:
            ev = (f"{r['for_inferred']} of {r['mattered']} cases where it mattered"
                  if r["changed"] else "")
            mark = " **(differs)**" if r["changed"] else ""
            lines.append(f"| `{r['switch']}` | {r['profile_value']} | "
                         f"{r['inferred_value']}{mark} | {ev} |")
        lines.append("")
    return "\n".join(lines) + "\n"
