"""Allure as its users set it up (issue 17): labels, results amended from the record,
categories, the report's name and its history across runs.

- :func:`labels`: parentSuite/suite/subSuite = firmware / model / group; epic/feature/
  story = manual document / table or section / row; severity by the strongest judged
  ground (manual critical, field normal, lab minor); tags for the source options present;
  a link to the manual's text in docs/manual when the case cites a section it holds. The
  pytest plugin sets them with ``allure.dynamic`` while the test runs.
- :func:`amend_results`: after the run, each ``*-result.json`` gets what only the record
  knows: the case's real start and stop (the test itself only waits for a lane that
  already ran it: ~1 ms), readable parameters (phone, options as text, not a Python
  repr), and *observed* as a status of its own (``unknown``: Allure has no custom status)
  whose message starts "observed: differs from the core" or "observed: matches the core",
  which ``categories.json`` files as categories of their own.
- :func:`write_config`: ``allurerc.json`` naming the report after the rig and firmware,
  with ``historyPath`` in the reports directory, so each run's report shows the trend of
  the runs before it (Allure 3 appends the run to that JSONL file).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from framework.records import CaseResult, CertificationDocument, atomic_write

SEVERITY = {"manual": "critical", "field": "normal", "lab": "minor"}
OBSERVED_DIFFERS = "observed: differs from the core"
OBSERVED_MATCHES = "observed: matches the core"
HISTORY = "allure-history.jsonl"
MANUAL_DIR = Path(__file__).resolve().parents[2] / "docs" / "manual"

CATEGORIES: list[dict[str, Any]] = [
    {"name": "Firmware deviations (product failures)", "matchedStatuses": ["failed"]},
    {"name": "Rig faults (PDU, console, DHCP, network)", "matchedStatuses": ["broken"]},
    {"name": OBSERVED_DIFFERS, "matchedStatuses": ["unknown", "skipped"],
     "messageRegex": rf"[\s\S]*{OBSERVED_DIFFERS}[\s\S]*"},
    {"name": OBSERVED_MATCHES, "matchedStatuses": ["unknown", "skipped"],
     "messageRegex": rf"[\s\S]*{OBSERVED_MATCHES}[\s\S]*"},
]

_SECTION = re.compile(r"\b(\d+\.\d+\.\d+)(?:-(\d+\.\d+\.\d+))?")
_TABLE = re.compile(r"\bTable (\d+-\d+)")


def manual_parts(manual: str) -> tuple[str, str]:
    """(document, table or section) of a case's manual reference."""
    text = manual.strip()
    if text.startswith("[F]"):
        return "field reports", text[3:].strip() or "field"
    if text.startswith("LAB-NOTES"):
        return "lab notes", text.split(":", 1)[-1].strip() or "lab"
    if text.startswith("no manual sentence"):
        return "no manual sentence", "unspecified"
    document, _, rest = _split(text)
    table = _TABLE.search(rest)
    if table:
        return document, f"Table {table.group(1)}"
    section = _SECTION.search(rest)
    if section:
        return document, f"section {section.group(0)}"
    return document, rest or "general"


def _split(manual: str) -> tuple[str, str, str]:
    """(document, separator, the rest) of a manual reference ("Admin Manual 2.2.8", ",",
    "10.2.2, Table 10-2 row 1"): the document's version is no section."""
    parts = re.split(r"([,:;])", manual, maxsplit=1)
    if len(parts) < 3:
        return manual.strip(), "", ""
    return parts[0].strip(), parts[1], parts[2].strip()


def manual_link(manual: str) -> tuple[str, str] | None:
    """(name, url) of the manual text in docs/manual holding a section the case cites."""
    cited = {m for pair in _SECTION.findall(_split(manual)[2]) for m in pair if m}
    if not MANUAL_DIR.is_dir():
        return None
    for path in sorted(MANUAL_DIR.glob("*.txt")):
        held = set(re.findall(r"\d+\.\d+\.\d+", path.stem))
        if cited & held:
            return manual, path.as_uri()
    return None


def severity(case: CaseResult) -> str:
    """By the strongest ground the case judged (else the strongest it has; else normal)."""
    rank = list(SEVERITY)
    assertions = case.assertions or []
    kinds = [a.ground.kind for a in assertions if a.judged] or [a.ground.kind
                                                                for a in assertions]
    if not kinds:
        return "normal"
    return SEVERITY[min(kinds, key=rank.index)]


def source_tags(options: Iterable[str]) -> list[str]:
    """The provisioning sources a case's options hold: 160, 66/67, 43 (and any other)."""
    present = set(options)
    tags = []
    if "160" in present:
        tags.append("160")
    if present & {"66", "67"}:
        tags.append("66/67")
    if "43" in present:
        tags.append("43")
    tags += sorted(present - {"160", "66", "67", "43"}, key=lambda k: (len(k), k))
    return tags


def options_text(case: CaseResult) -> str:
    """The case's DHCP options as one readable line."""
    text = "; ".join(f"{k}={v}" for k, v in case.options.items()) or "(no options)"
    if case.url_option != 160:
        text += f" [provisioning/url_option_value={case.url_option}]"
    return text


def labels(case: CaseResult) -> dict[str, Any]:
    """What the plugin sets for a case with ``allure.dynamic``."""
    document, section = manual_parts(case.manual)
    return {
        "parent_suite": case.firmware or "unknown firmware", "suite": case.model,
        "sub_suite": case.group, "epic": document, "feature": section,
        "story": case.id, "severity": severity(case), "tags": source_tags(case.options),
        "link": manual_link(case.manual),
        "parameters": {"phone": case.phone, "options": options_text(case)},
    }


def observed_message(case: CaseResult) -> str:
    agrees = case.matches_core
    head = OBSERVED_MATCHES if agrees else OBSERVED_DIFFERS
    if agrees is None:
        head = "observed"
    return f"{head}: {case.reason}"


def amend_results(results: Path, doc: CertificationDocument) -> int:
    """Amend each Allure result of a case from the record; the number amended."""
    if not results.is_dir():
        return 0
    by_key = {(c.id, c.phone): c for c in doc.cases}
    amended = 0
    for path in sorted(results.glob("*-result.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        named = {str(lab.get("name")): str(lab.get("value")) for lab in data.get("labels", [])}
        case = by_key.get((named.get("row", ""), named.get("phone", "")))
        if case is None:
            continue
        data["start"], data["stop"] = int(case.start * 1000), int(case.end * 1000)
        data["parameters"] = [{"name": k, "value": v}
                              for k, v in labels(case)["parameters"].items()]
        if case.verdict == "observed":
            data["status"] = "unknown"
            data["statusDetails"] = {"message": observed_message(case)}
        atomic_write(path, json.dumps(data))  # evidence: the old file or the new one
        amended += 1
    write_categories(results)
    return amended


def write_categories(results: Path) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / "categories.json").write_text(json.dumps(CATEGORIES, indent=2))


def report_name(doc: CertificationDocument) -> str:
    firmware = sorted({c.firmware for c in doc.cases if c.firmware}
                      | {p.firmware for p in doc.phones if p.firmware})
    return (f"400HD certification · rig {doc.run.rig} · firmware "
            f"{', '.join(firmware) or 'unknown'} · run {doc.run.id}")


def write_config(run_dir: Path, doc: CertificationDocument, history_dir: Path) -> Path:
    """``allurerc.json`` for ``allure generate --config``: name, output, history."""
    name = report_name(doc)
    config = {"name": name, "output": str(run_dir / "allure-report"),
              "historyPath": str(history_dir / HISTORY),
              "categories": {"rules": CATEGORIES},
              "plugins": {"awesome": {"options": {
                  "reportName": name, "groupBy": ["parentSuite", "suite", "subSuite"]}}}}
    path = run_dir / "allurerc.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def generate_command(allure: str, run_dir: Path, doc: CertificationDocument,
                     history_dir: Path) -> list[str]:
    """The ``allure generate`` command of a run (its results amended before: they are
    evidence, sealed before the renderings), its config written."""
    config = write_config(run_dir, doc, history_dir)
    return [allure, "generate", str(run_dir / "allure-results"), "--config", str(config),
            "-o", str(run_dir / "allure-report")]
