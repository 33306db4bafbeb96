"""The evidence writer: the one place that writes a case's evidence bundle.

Every judged case (and every release-install step) gets ``evidence/<phone>/<case>/``:
a human summary (the expected-vs-observed table, or a step's summary.json), the phone's
requests from the request log, its DHCP transcript, its console excerpt and its traffic
sliced out of the phone's capture. Each file is named in the record with its size and
SHA-256 (:func:`framework.records.evidence_item`), so a report can be checked against the
files it cites.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from framework.records import EvidenceItem, evidence_item
from framework.rig import PhoneSpec
from framework.runner.cycle import phone_matcher

log = logging.getLogger(__name__)


def safe(text: str) -> str:
    """A name usable as one path component."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", text)


class EvidenceWriter:
    """Writes evidence files under a run directory from the lab stack's logs."""

    def __init__(self, run_dir: Path, stack: Any) -> None:
        self.run_dir = run_dir
        self.stack = stack

    def case_dir(self, phone: str, name: str) -> Path:
        d = self.run_dir / "evidence" / safe(phone) / safe(name)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def phone_capture_path(self, phone: str, started: float) -> Path:
        d = self.run_dir / "evidence" / safe(phone)
        d.mkdir(parents=True, exist_ok=True)
        return d / f"run-{int(started)}.pcap"

    def item(self, path: Path, kind: str) -> EvidenceItem:
        return evidence_item(path, self.run_dir, kind)

    def bundle(self, spec: PhoneSpec, link: Any, name: str, *, since: float,
               requests_since: float | None = None,
               summary: tuple[str, str, str] | None = None) -> list[EvidenceItem]:
        """The bundle of one case or step: ``summary`` (file name, kind, text) first, then
        the phone's requests (from ``requests_since``, default ``since``), its DHCP
        transcript and console excerpt from ``since``, and its traffic slice if cut."""
        d = self.case_dir(spec.name, name)
        out = []
        if summary is not None:
            filename, kind, text = summary
            (d / filename).write_text(text)
            out.append(self.item(d / filename, kind))
        out.append(self.requests(d / "requests.jsonl", spec,
                                 since if requests_since is None else requests_since))
        dhcp = d / "dhcp-transcript.json"
        msgs = [m for m in self.stack.dhcp.transcript(spec.mac_colon) if m.time >= since - 0.001]
        dhcp.write_text(json.dumps([m.to_dict() for m in msgs], indent=1, sort_keys=True))
        out.append(self.item(dhcp, "dhcp-transcript"))
        if link is not None:
            console = link.console_excerpt(since, d / "console.log")
            if console is not None:
                out.append(self.item(console, "console-log"))
        pcap = d / "traffic.pcap"
        if pcap.exists():
            out.append(self.item(pcap, "pcap"))
        return out

    def requests(self, path: Path, spec: PhoneSpec, since: float) -> EvidenceItem:
        """This phone's requests from the request log since ``since``, one JSON per line."""
        mine = phone_matcher(spec)
        with path.open("w") as f:
            for r in self.stack.services.log.records(since=since):
                if mine(r):
                    f.write(json.dumps(r.to_dict(), sort_keys=True) + "\n")
        return self.item(path, "request-log")

    def late_requests(self, spec: PhoneSpec, case_id: str, late: Iterable[Any]) -> EvidenceItem:
        """The requests that came after a case's verdict and amended it."""
        path = self.case_dir(spec.name, case_id) / "late-requests.jsonl"
        with path.open("w") as f:
            for r in late:
                f.write(json.dumps(r.to_dict(), sort_keys=True) + "\n")
        return self.item(path, "late-requests")

    def traffic_slice(self, spec: PhoneSpec, tail: Any, case_id: str, since: float) -> Any:
        """What a case stops at its end: ``traffic.pcap`` cut out of the phone's capture
        from ``since`` (None without a capture)."""
        if tail is None:
            return None
        path = self.case_dir(spec.name, case_id) / "traffic.pcap"
        return _Slice(tail, since, path, spec.name)


class _Slice:
    """A pending cut of a phone's capture; ``stop()`` cuts it once."""

    def __init__(self, tail: Any, since: float, path: Path, phone: str) -> None:
        self.tail, self.since, self.path, self.phone = tail, since, path, phone
        self.done = False

    def stop(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.tail.slice(self.since, self.path)
        except (OSError, ValueError, RuntimeError) as exc:
            log.warning("no traffic.pcap for %s: %s", self.phone, exc)


def _agreement(entry: Any) -> str:
    """`` (matches the core)`` / `` (differs from the core)`` for an observed case."""
    if entry.verdict != "observed" or getattr(entry, "matches_core", None) is None:
        return ""
    return " (matches the core)" if entry.matches_core else " (differs from the core)"


def expected_vs_observed(entry: Any) -> str:
    """The human table attached to every case (a CaseResult)."""
    exp = entry.expected or {}
    lines = [f"case      {entry.id}  ({entry.manual})",
             f"phone     {entry.phone}  {entry.model}  {entry.mac}  firmware "
             f"{entry.firmware}  profile {entry.profile}",
             "options   " + ", ".join(f"{k}={v!r}" for k, v in entry.options.items()),
             f"verdict   {entry.verdict}{_agreement(entry)}: {entry.reason}", "",
             f"expected  (rule {exp.get('rule')}, {exp.get('promise')}, source "
             f"{exp.get('source')})",
             f"  firmware       {exp.get('firmware_url')}",
             f"  configuration  {exp.get('config_url')}"]
    if getattr(entry, "assertions", None):  # each expectation and its ground (issue 16)
        lines += ["", "assertions"]
        for a in entry.assertions:
            state = ("holds" if a.holds else f"does not hold: {a.detail}") + \
                ("" if a.judged else " (observed, not judged)")
            lines.append(f"  {a.what}: {a.expected}: {state}")
            lines.append(f"    ground {a.ground.kind}: {a.ground.source}: \"{a.ground.quote}\"")
    for note in getattr(entry, "notes", None) or []:
        lines.append(f"  note: {note}")
    lines += ["", "observed"]
    start = entry.start or 0.0
    for o in entry.observed:
        lines.append(f"  +{o.time - start:7.3f}s  {o.protocol:<5}  "
                     f"{o.url or o.host}  ({o.outcome})")
    if not entry.observed:
        lines.append("  (nothing)")
    return "\n".join(lines) + "\n"
