"""A real labgrid lab for tests: coordinator and exporter on loopback, from .venv-labgrid.

The coordinator's log is the event source: ``listening on`` says it is ready,
``set_resource GROUP NAME`` that the exporter announced a resource, ``PLACE: place acquired
by OWNER`` / ``place released`` that a lock changed hands. Waits read that log line by line
with a deadline naming what was awaited.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from framework.labgrid.client import find_tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LogFollower:
    """Lines of a child's output as they arrive, with waits for a pattern."""

    def __init__(self, proc: subprocess.Popen[str], name: str) -> None:
        self.proc = proc
        self.name = name
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True, name=f"log-{name}")
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, pattern: str, timeout: float, what: str, start: int = 0) -> int:
        """Index of the first line at or after ``start`` matching ``pattern``."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return i
                    i += 1
                if self.proc.poll() is not None and i >= len(self.lines):
                    raise RuntimeError(f"{self.name} exited ({self.proc.returncode}) while "
                                       f"waiting for {what}: {self.lines[-5:]}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what} "
                                       f"in the {self.name} log; last lines: {self.lines[-5:]}")
                self._cond.wait(left)

    def mark(self) -> int:
        with self._cond:
            return len(self.lines)


def _start(argv: list[str], cwd: Path, name: str) -> tuple[subprocess.Popen[str], LogFollower]:
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return proc, LogFollower(proc, name)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def coordinator(workdir: Path) -> Iterator[tuple[str, LogFollower]]:
    """A labgrid coordinator on 127.0.0.1:<free port>; yields (address, its log)."""
    workdir.mkdir(parents=True, exist_ok=True)
    address = f"127.0.0.1:{free_port()}"
    proc, log = _start([find_tool("labgrid-coordinator"), "-l", address], workdir,
                       "coordinator")
    try:
        log.wait_for(r"listening on", 30, "the coordinator to listen")
        yield address, log
    finally:
        _stop(proc)


@contextmanager
def exporter(address: str, name: str, config: Path, coordinator_log: LogFollower,
             resources: list[str]) -> Iterator[LogFollower]:
    """A labgrid exporter for ``config``; returns once the coordinator has every resource."""
    start = coordinator_log.mark()
    proc, log = _start([find_tool("labgrid-exporter"), "-c", address, "--name", name,
                        str(config)], config.parent, f"exporter {name}")
    try:
        for res in resources:
            coordinator_log.wait_for(rf"set_resource \S+ {re.escape(res)} ", 30,
                                     f"exporter {name} to announce {res}", start)
        yield log
    finally:
        _stop(proc)
