"""Fencing without a coordinator (framework/labgrid/fence.py): the lock guard's answers and
their cache, the parent watchdog, and how the janitor finds a dead run's orphans.

The end-to-end cases (SIGKILL of `hil lab run`, a lock taken away mid-run) run on a real
coordinator in test_lab_scale.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from framework.labgrid.client import LabgridError, Place, Reservation
from framework.labgrid.fence import PlaceLockGuard, orphans_holding, pid_alive
from framework.labgrid.janitor import sweep

ROOT = Path(__file__).resolve().parents[2]


class FakeClient:
    """``show`` answers from a script: a Place's ``acquired`` or an exception."""

    def __init__(self, *answers: str | Exception | None) -> None:
        self.answers = list(answers)
        self.calls = 0

    def show(self, place: str) -> Place:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return Place(name=place, acquired=answer)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _guard(client: FakeClient, clock: Clock, **kw: object) -> PlaceLockGuard:
    return PlaceLockGuard("bench-a", "me.hil-42", client=client,  # type: ignore[arg-type]
                          clock=clock, **kw)  # type: ignore[arg-type]


def test_a_held_lock_is_asked_once_per_ttl_not_once_per_case() -> None:
    client, clock = FakeClient("host/me.hil-42"), Clock()
    guard = _guard(client, clock, ttl_s=2.0)
    assert [guard() for _ in range(500)] == [None] * 500
    assert client.calls == 1
    clock.now += 2.5
    assert guard() is None and client.calls == 2


def test_a_lock_taken_away_stops_the_run_for_good() -> None:
    client, clock = FakeClient("host/me.hil-42", "host/alice", "host/me.hil-42"), Clock()
    guard = _guard(client, clock, ttl_s=1.0)
    assert guard() is None
    clock.now += 1.5
    reason = guard()
    assert reason == ("labgrid place bench-a is no longer locked by this run (me.hil-42): "
                      "now locked by host/alice")
    clock.now += 10
    assert guard() == reason and client.calls == 2  # final: never asked again


def test_an_unlocked_place_and_a_lookalike_owner_are_not_held() -> None:
    assert _guard(FakeClient(None), Clock())() == \
        "labgrid place bench-a is no longer locked by this run (me.hil-42): now unlocked"
    assert "now locked by host/me.hil-421" in (_guard(FakeClient("host/me.hil-421"), Clock())()
                                               or "")


def test_a_coordinator_that_does_not_answer_is_retried_then_stops_the_run() -> None:
    down = LabgridError("labgrid-client -p bench-a show: no answer from coordinator")
    flaky = FakeClient(down, "host/me.hil-42")
    assert _guard(flaky, Clock(), attempts=2)() is None and flaky.calls == 2
    dead = FakeClient(down)
    reason = _guard(dead, Clock(), attempts=3)()
    assert dead.calls == 3
    assert reason == ("cannot confirm this run still holds labgrid place bench-a: "
                      "labgrid-client -p bench-a show: no answer from coordinator")


def _await_exit(pid: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("death_signal", [True, False], ids=["pdeathsig", "watchdog-only"])
def test_a_fenced_process_stops_when_its_parent_dies(tmp_path: Path,
                                                     death_signal: bool) -> None:
    """Parent killed with SIGKILL: the child's death signal (or, without it, its watchdog
    on the parent pid) ends in the normal interrupted path (KeyboardInterrupt)."""
    out = tmp_path / "child.out"
    child = textwrap.dedent(f"""
        import os, sys, threading
        sys.path.insert(0, {str(ROOT)!r})
        import framework.labgrid.fence as fence
        if not {death_signal!r}:
            fence.set_parent_death_signal = lambda sig=None: False
        f = fence.Fence("bench-a", "me.hil-{os.getpid()}", coordinator="127.0.0.1:1",
                        grace_s=30, poll_s=0.1)
        f.arm()
        print("armed", flush=True)
        try:
            threading.Event().wait(60)
            print("not stopped", flush=True)
        except KeyboardInterrupt as exc:
            print("interrupted:", f.parent_gone, flush=True)
    """)
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; "
         f"p = subprocess.Popen([sys.executable, '-c', {child!r}], stdout=open({str(out)!r}, "
         "'w')); print(p.pid, flush=True); p.wait()"],
        stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    deadline = time.monotonic() + 30
    while "armed" not in (out.read_text() if out.exists() else ""):
        assert time.monotonic() < deadline, "timed out waiting for the child to arm"
        time.sleep(0.05)
    parent.kill()
    parent.wait()
    _await_exit(pid, 10, "the orphaned child to stop")
    assert out.read_text().splitlines()[1] == (
        f"interrupted: its parent hil lab run (pid {parent.pid}) died")


def test_the_janitor_finds_a_dead_runs_orphans_by_their_command_line() -> None:
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                               "--hold-place", "bench-z", "--hold-owner", "me.hil-999999"])
    try:
        deadline = time.monotonic() + 10
        while orphan.pid not in orphans_holding("me.hil-999999", "bench-z"):
            assert time.monotonic() < deadline, "the orphan was never found"
            time.sleep(0.05)
        assert orphans_holding("me.hil-999999", "bench-y") == []
        assert orphans_holding("me.hil-99999") == []
    finally:
        orphan.send_signal(signal.SIGKILL)
        orphan.wait()
    assert orphan.pid not in orphans_holding("me.hil-999999")


class SweptClient:
    """What the janitor asks (places, reservations) and what it does (unlock, cancel)."""

    def __init__(self, place: Place) -> None:
        self.place = place
        self.done: list[str] = []

    def places(self) -> list[Place]:
        return [self.place]

    def reservations(self) -> list[Reservation]:
        return [Reservation("TOKEN1", self.place.acquired or "", "acquired", {},
                            (self.place.name,))]

    def unlock(self, place: str, *, kick: bool = False) -> None:
        self.done.append(f"unlock {place}")

    def cancel_reservation(self, token: str) -> None:
        self.done.append(f"cancel {token}")


def test_the_janitor_leaves_a_place_alone_while_an_orphan_of_the_dead_run_drives_it() -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    owner = f"me.hil-{dead.pid}"
    host = os.environ.get("LG_HOSTNAME") or socket.gethostname()
    client = SweptClient(Place(name="bench-z", acquired=f"{host}/{owner}"))
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                               "--hold-place", "bench-z", "--hold-owner", owner])
    try:
        deadline = time.monotonic() + 10
        while orphan.pid not in orphans_holding(owner, "bench-z"):
            assert time.monotonic() < deadline, "the orphan was never found"
            time.sleep(0.05)
        (action,) = sweep(client)  # type: ignore[arg-type]
        assert client.done == [] and not action.done
        assert action.detail.startswith(f"left alone: hil run pid {orphan.pid} of that run "
                                        "still drives it")
    finally:
        orphan.send_signal(signal.SIGKILL)
        orphan.wait()
    swept = sweep(client)  # type: ignore[arg-type]
    assert [a.kind for a in swept] == ["unlock", "cancel-reservation"]
    assert client.done == ["unlock bench-z", "cancel TOKEN1"]
