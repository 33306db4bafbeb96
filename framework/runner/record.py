"""The certification record: one machine-readable file per run, written case by case.

``reports/<run-id>/certification.json`` holds ``run``, ``phones``, ``cases`` and
``summary``. Every finished case is appended to ``cases.jsonl`` (flushed and fsynced)
and the JSON file is rewritten atomically, so a crash or ``kill -9`` loses nothing that
finished. Reports (HTML, Allure, JUnit) are renderings of this record, never a second
source of truth.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

VERDICTS = ("passed", "failed", "broken", "observed", "skipped")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def evidence_entry(path: Path, run_dir: Path, kind: str) -> dict[str, Any]:
    """An evidence file as the record names it: path (relative), kind, size, SHA-256."""
    return {"kind": kind, "path": str(path.relative_to(run_dir)), "bytes": path.stat().st_size,
            "sha256": sha256_file(path)}


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def summarise(cases: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = Counter(str(c.get("verdict")) for c in cases)
    out = {v: counts.get(v, 0) for v in VERDICTS}
    out["total"] = sum(out.values())
    return out


class CertificationRecord:
    """Thread-safe writer of one run's record (lanes add cases as they finish).

    A finished case is durable before ``add_case`` returns (appended to ``cases.jsonl`` and
    fsynced); the full ``certification.json`` is then rewritten behind the lanes by one
    writer thread (coalescing cases that finish together), so a growing record does not
    lengthen every case. Phone and run updates, and ``finish``, write it at once.
    """

    def __init__(self, run_dir: Path, run: Mapping[str, Any], phones: list[dict[str, Any]]):
        self.run_dir = run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / "certification.json"
        self.jsonl = run_dir / "cases.jsonl"
        self._lock = threading.Lock()        # the in-memory record
        self._write_lock = threading.Lock()  # certification.json
        self.run: dict[str, Any] = dict(run)
        self.phones = phones
        self.cases: list[dict[str, Any]] = []
        if self.jsonl.exists():  # resuming: keep what finished before
            self.cases = load_cases(self.jsonl)
        self._dirty = threading.Event()
        self._closed = False
        self._write()
        self._writer = threading.Thread(target=self._write_behind, daemon=True,
                                        name="record-writer")
        self._writer.start()

    def add_case(self, case: Mapping[str, Any]) -> None:
        line = json.dumps(case, sort_keys=True)
        with self._lock:
            with open(self.jsonl, "a") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
            self.cases.append(dict(case))
        self._dirty.set()

    def amend_case(self, case: Mapping[str, Any]) -> bool:
        """Replace a finished case (same ``id`` and ``phone``) by its amended entry, e.g.
        a late request that arrived after its verdict: appended to ``cases.jsonl`` (the
        last line of a case wins when read back) and durable before returning. False when
        the record holds no such case."""
        key = (case.get("id"), case.get("phone"))
        line = json.dumps(case, sort_keys=True)
        with self._lock:
            index = next((i for i, c in enumerate(self.cases)
                          if (c.get("id"), c.get("phone")) == key), None)
            if index is None:
                return False
            with open(self.jsonl, "a") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
            self.cases[index] = dict(case)
        self._dirty.set()
        return True

    def update_run(self, **fields: Any) -> None:
        with self._lock:
            self.run.update(fields)
        self._write()

    def update_phone(self, name: str, **fields: Any) -> None:
        with self._lock:
            for p in self.phones:
                if p.get("name") == name:
                    p.update(fields)
        self._write()

    def finish(self, status: str = "finished") -> None:
        self._closed = True
        self._dirty.set()
        self._writer.join(timeout=30)
        self.update_run(end=time.time(), status=status)

    def document(self) -> dict[str, Any]:
        with self._lock:
            cases = list(self.cases)
            run, phones = dict(self.run), [dict(p) for p in self.phones]
        return {"run": run, "phones": phones, "cases": cases, "summary": summarise(cases)}

    def _write_behind(self) -> None:
        while True:
            self._dirty.wait()
            if self._closed:
                return
            self._dirty.clear()
            try:
                self._write()
            except OSError as exc:  # the JSONL has every case; the next write may succeed
                log.warning("certification.json not rewritten: %s", exc)

    def _write(self) -> None:
        with self._write_lock:  # each write snapshots after the previous one: never older
            _atomic_write(self.path, json.dumps(self.document(), indent=2, sort_keys=True))


def load_cases(jsonl: Path) -> list[dict[str, Any]]:
    """Finished cases from ``cases.jsonl``, in the order they first finished; a case
    written again (amended) takes its last version; a torn last line (crash mid-write)
    is dropped."""
    out: dict[tuple[Any, Any], dict[str, Any]] = {}
    for line in jsonl.read_text().splitlines():
        try:
            case = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(case, dict):
            out[(case.get("id"), case.get("phone"))] = case
    return list(out.values())


class RecordError(ValueError):
    """A certification record cannot be read; the message names the file and why."""


def load_record(path: Path) -> dict[str, Any]:
    """A run's record from its directory or its certification.json, rebuilt from
    cases.jsonl when the run died before its last rewrite."""
    run_dir = path if path.is_dir() else path.parent
    file = run_dir / "certification.json"
    try:
        doc = json.loads(file.read_text())
    except FileNotFoundError:
        raise RecordError(f"{file}: no certification record there") from None
    except json.JSONDecodeError as exc:
        raise RecordError(f"{file}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    for key in ("run", "phones", "cases", "summary"):
        if key not in doc:
            raise RecordError(f"{file}: missing top-level key {key!r}")
    jsonl = run_dir / "cases.jsonl"
    if jsonl.exists():
        cases = load_cases(jsonl)
        # cases.jsonl is durable first: more cases, or an amendment not yet rewritten
        if len(cases) >= len(doc["cases"]) and cases != doc["cases"]:
            doc["cases"] = cases
            doc["summary"] = summarise(cases)
    return doc
