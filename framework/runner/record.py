"""The certification record's writer: one machine-readable file per run, written case by case.

``reports/<run-id>/certification.json`` holds ``run``, ``phones``, ``cases`` and
``summary`` (typed in framework.records, which also reads it back). Every finished case is
appended to ``cases.jsonl`` (flushed and fsynced) and the JSON file is rewritten
atomically, so a crash or ``kill -9`` loses nothing that finished. Reports (HTML, Allure,
JUnit) are renderings of this record, never a second source of truth.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from framework.records import (
    CaseResult,
    CertificationDocument,
    PhoneRecord,
    RunRecord,
    atomic_write,
    document,
    dumps,
    load_cases,
)

log = logging.getLogger(__name__)


class CertificationRecord:
    """Thread-safe writer of one run's record (lanes add cases as they finish).

    A finished case is durable before ``add_case`` returns (appended to ``cases.jsonl`` and
    fsynced); the full ``certification.json`` is then rewritten behind the lanes by one
    writer thread (coalescing cases that finish together), so a growing record does not
    lengthen every case. Phone and run updates, and ``finish``, write it at once.
    """

    def __init__(self, run_dir: Path, run: RunRecord, phones: Iterable[PhoneRecord]):
        self.run_dir = run_dir
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / "certification.json"
        self.jsonl = run_dir / "cases.jsonl"
        self._lock = threading.Lock()        # the in-memory record
        self._write_lock = threading.Lock()  # certification.json
        self.run = run
        self.phones: list[PhoneRecord] = list(phones)
        self.cases: list[CaseResult] = []
        if self.jsonl.exists():  # resuming: keep what finished before
            self.cases = load_cases(self.jsonl)
        self._dirty = threading.Event()
        self._closed = False
        self._write()
        self._writer = threading.Thread(target=self._write_behind, daemon=True,
                                        name="record-writer")
        self._writer.start()

    def _append(self, case: CaseResult) -> None:
        with open(self.jsonl, "a") as f:
            f.write(json.dumps(case.to_json(), sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def add_case(self, case: CaseResult) -> None:
        """Record a finished case, durable on return."""
        with self._lock:
            self._append(case)
            self.cases.append(case)
        self._dirty.set()

    def amend_case(self, case: CaseResult) -> bool:
        """Replace a finished case (same ``id`` and ``phone``) by its amended entry, e.g.
        a late request that arrived after its verdict: appended to ``cases.jsonl`` (the
        last line of a case wins when read back) and durable before returning. False when
        the record holds no such case."""
        with self._lock:
            index = next((i for i, c in enumerate(self.cases) if c.key == case.key), None)
            if index is None:
                return False
            self._append(case)
            self.cases[index] = case
        self._dirty.set()
        return True

    def update_run(self, **fields: Any) -> None:
        with self._lock:
            self.run = self.run.amended(**fields)
        self._write()

    def update_phone(self, name: str, **fields: Any) -> None:
        with self._lock:
            self.phones = [p.amended(**fields) if p.name == name else p for p in self.phones]
        self._write()

    def finish(self, status: str = "finished") -> None:
        self._closed = True
        self._dirty.set()
        self._writer.join(timeout=30)
        self.update_run(end=time.time(), status=status)

    def document(self) -> CertificationDocument:
        with self._lock:
            return document(self.run, self.phones, self.cases)

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
            atomic_write(self.path, dumps(self.document()))
