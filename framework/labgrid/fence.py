"""Fencing: a place's `hil run` drives its bench only while it holds the place.

`hil lab run` locks a labgrid place and starts one `hil run --hold-place PLACE --hold-owner
OWNER` on it (framework.labgrid.runner). That child:

* dies with its parent: ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (Linux) plus a watchdog
  thread that polls the parent pid (``os.getppid()`` changing, or the owner's pid gone).
  When the parent is gone the run starts no further case and records none it did not run
  (those stay missing, so ``--resume`` runs them), gets ``grace_s`` for its normal
  interrupted stop, then kills its process group (tcpdump, kea, transfer children) and
  itself;
* checks before every case that the place is still locked by ``OWNER``
  (:class:`PlaceLockGuard`, ``LabSession.guard``): a run that lost its lock stops, the
  remaining cases are recorded ``skipped`` ("not run: ...") and nothing is released: the
  child never unlocks, and the parent's booking leaves a lock someone else holds alone.

``hil lab janitor`` does not free a place while a `hil run` holding it for a dead owner is
still alive (:func:`orphans_holding`).
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from framework.labgrid.client import LabgridClient, LabgridError

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
#: Exit code of a `hil run` that stopped because it lost its place (lock or parent).
EXIT_FENCED = 4


def set_parent_death_signal(sig: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent (the thread that forked
    it) dies. False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def dies_with_parent(argv: list[str], sig: str = "TERM") -> list[str]:
    """``argv`` run so that it gets ``sig`` when the thread starting it ends (``setpriv
    --pdeathsig``, util-linux; unchanged where setpriv is missing). No ``preexec_fn``: it is
    not safe in a process with threads."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", sig, "--", *argv] if setpriv else list(argv)


def pid_alive(pid: int) -> bool:
    """True when ``pid`` runs (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def orphans_holding(owner: str, place: str | None = None) -> list[int]:
    """Pids of live `hil run --hold-owner OWNER [--hold-place PLACE]` processes on this host."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if _value(args, "--hold-owner") == owner and (
                place is None or _value(args, "--hold-place") == place) and \
                pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def _value(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


class PlaceLockGuard:
    """``LabSession.guard`` for a labgrid place: None while ``owner`` holds the lock, else
    the reason. A positive answer is cached ``ttl_s`` (lanes share one ``labgrid-client
    show``); a negative one is final. A coordinator that does not answer is asked
    ``attempts`` times before the run is stopped (not being able to tell is not holding).

    The coordinator is asked from the guard's own thread, started with the guard: threads
    inherit their creator's network namespace, and the lab session's lanes run inside the
    lab's namespace, where the coordinator's address may not route."""

    def __init__(self, place: str, owner: str, *, client: LabgridClient | None = None,
                 coordinator: str | None = None, ttl_s: float = 2.0, attempts: int = 2,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.place = place
        self.owner = owner
        self._client = client
        self._coordinator = coordinator
        self.ttl_s = ttl_s
        self.attempts = max(1, attempts)
        self._clock = clock
        self._lock = threading.Lock()
        self._held_until = float("-inf")
        self.lost: str | None = None
        self.queries = 0
        self._asker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hil-place-guard")
        self._asker.submit(lambda: None).result()  # its thread, here, in our namespace

    def client(self) -> LabgridClient:
        if self._client is None:
            # a throw-away identity: this guard only reads, it never locks or unlocks
            self._client = LabgridClient(self._coordinator, owner=f"{self.owner}.guard")
        return self._client

    def __call__(self) -> str | None:
        with self._lock:
            if self.lost is not None or self._clock() < self._held_until:
                return self.lost
            self.lost = self._asker.submit(self._ask).result()
            if self.lost is None:
                self._held_until = self._clock() + self.ttl_s
            else:
                log.error("%s", self.lost)
            return self.lost

    def _ask(self) -> str | None:
        problem = ""
        for _ in range(self.attempts):
            self.queries += 1
            try:
                acquired = self.client().show(self.place).acquired
            except LabgridError as exc:
                problem = str(exc)
                continue
            if acquired is not None and acquired.rsplit("/", 1)[-1] == self.owner:
                return None
            now = f"now locked by {acquired}" if acquired else "now unlocked"
            return f"labgrid place {self.place} is no longer locked by this run " \
                   f"({self.owner}): {now}"
        return f"cannot confirm this run still holds labgrid place {self.place}: {problem}"


class Fence:
    """Everything `hil run --hold-place` does to drive its place only while it holds it.

    ``arm()`` once at the start of the child; ``guard`` goes to ``LabSession.guard``;
    ``done()`` when the run is about to exit on its own.
    """

    def __init__(self, place: str, owner: str, *, coordinator: str | None = None,
                 parent_pid: int | None = None, grace_s: float = 3.0,
                 poll_s: float = 0.5) -> None:
        self.place = place
        self.owner = owner
        self.parent_pid = parent_pid if parent_pid is not None else os.getppid()
        self.grace_s = grace_s
        self.poll_s = poll_s
        self.lock_guard = PlaceLockGuard(place, owner, coordinator=coordinator)
        self.parent_gone: str | None = None
        self._done = threading.Event()
        self._dying = threading.Lock()
        self._state = threading.Lock()

    exit_code = EXIT_FENCED

    @property
    def lost(self) -> str | None:
        """Why this run stopped driving its place (parent gone or lock lost), if it did."""
        return self.parent_gone or self.lock_guard.lost

    def _owner_pid(self) -> int | None:
        _, sep, pid = self.owner.rpartition(".hil-")
        return int(pid) if sep and pid.isdigit() else None

    def _parent_problem(self) -> str | None:
        if os.getppid() != self.parent_pid:
            return f"its parent hil lab run (pid {self.parent_pid}) died"
        owner_pid = self._owner_pid()
        if owner_pid is not None and not pid_alive(owner_pid):
            return f"the run holding labgrid place {self.place} (pid {owner_pid}) died"
        return None

    def arm(self) -> None:
        """Death signal, SIGTERM handler, parent watchdog. SystemExit when the parent is
        already gone (before the death signal was set)."""
        set_parent_death_signal(signal.SIGTERM)
        problem = self._parent_problem()
        if problem:
            _say(f"hil run: not starting: {problem}")
            raise SystemExit(EXIT_FENCED)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        threading.Thread(target=self._watch, name="hil-parent-watch", daemon=True).start()

    def guard(self) -> str | None:
        """``LabSession.guard``. When the parent is gone the calling lane ends here without
        recording anything (SystemExit ends a thread silently); else the lock check."""
        if self.parent_gone is None:
            problem = self._parent_problem()
            if problem:
                self._parent_died(problem)
                os.kill(os.getpid(), signal.SIGTERM)  # the main thread stops the run
        if self.parent_gone is not None:
            raise SystemExit(EXIT_FENCED)
        return self.lock_guard()

    def done(self) -> None:
        """The run is exiting on its own: the deadline and the watchdog stand down."""
        self._done.set()

    def _watch(self) -> None:
        while not self._done.wait(self.poll_s):
            problem = self._parent_problem()
            if problem:
                self._parent_died(problem)
                os.kill(os.getpid(), signal.SIGTERM)  # the same path as the death signal
                return

    def _on_sigterm(self, signum: int, frame: object) -> None:
        problem = self._parent_problem()
        if problem:
            self._parent_died(problem)
        if not self._dying.acquire(blocking=False):
            return  # already stopping
        raise KeyboardInterrupt(f"signal {signum}: {self.parent_gone or 'terminated'}")

    def _parent_died(self, problem: str) -> None:
        with self._state:
            if self.parent_gone is not None:
                return
            self.parent_gone = problem
        _say(f"hil run: stopping: {problem}; no further case runs on {self.place}")
        threading.Thread(target=self._deadline, name="hil-fence-deadline", daemon=True).start()

    def _deadline(self) -> None:
        """The normal interrupted stop gets ``grace_s``; then our process group goes."""
        if self._done.wait(self.grace_s):
            return
        _say(f"hil run: did not stop within {self.grace_s:g} s of losing its parent: killed; "
             "where it was:")
        with contextlib.suppress(Exception):
            faulthandler.dump_traceback(file=sys.__stderr__ or 2, all_threads=True)
        if os.getpgid(0) == os.getpid():  # our own group (the runner starts us so)
            os.killpg(os.getpid(), signal.SIGKILL)
        os._exit(EXIT_FENCED)


def _say(line: str) -> None:
    """To the process's own stderr (pytest captures ``sys.stderr`` during the cases)."""
    stream = sys.__stderr__ or sys.stderr
    print(f"{time.strftime('%H:%M:%S')} {line}", file=stream, flush=True)


#: The fence of this process's `hil run --hold-place` (set by framework.run).
_ACTIVE: list[Fence] = []


def activate(fence: Fence) -> None:
    _ACTIVE[:] = [fence]


def active_guard() -> Callable[[], str | None] | None:
    """The guard for ``LabSession.guard`` in this process, or None (no place held).
    framework.pytest_plugin: ``session.guard = active_guard()`` right after creating it."""
    return _ACTIVE[0].guard if _ACTIVE else None

