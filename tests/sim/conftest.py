"""Fixtures for the simulated rig's tests: labs started through `python -m framework.sim`,
Kea, and independent provisioning servers, all in namespaces prefixed ``hilt-m-<pid>``
(the pid of the test run, so two runs on one machine never collide)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from framework.netns import have_privileges, list_namespaces
from framework.sim.state import pid_alive, read_state, run_dir
from tests.sim.harness import (
    PREFIX,
    PREFIX_ROOT,
    PYTHON,
    ROOT,
    Kea,
    PhoneEntry,
    SimLabRun,
    Witnesses,
)

needs_netns = pytest.mark.skipif(not have_privileges()[0],
                                 reason=f"needs network namespaces: {have_privileges()[1]}")


def _clean_leftovers() -> None:
    """Take down labs left by test runs that died (never a live run's lab, nor a real one).

    Test labs are ``hilt-m-<pid>``; one whose test process is gone is a leftover: its
    namespaces are removed (``hil sim down``) and so are its log and control socket.
    """
    prefixes = {p.name[len("sim-"):].rsplit(".", 1)[0]
                for p in run_dir().glob(f"sim-{PREFIX_ROOT}-*.*")}
    prefixes |= {"-".join(n.split("-")[:3]) for n in list_namespaces()
                 if n.startswith(f"{PREFIX_ROOT}-") and n.split("-")[2].isdigit()}
    for prefix in sorted(p for p in prefixes if p.rsplit("-", 1)[1].isdigit()):
        state = read_state(prefix)
        owner = int(prefix.rsplit("-", 1)[1])
        if prefix == PREFIX or (state and pid_alive(int(state.get("pid", 0)))) or \
                _process_exists(owner):
            continue
        if read_state(prefix) or any(n.startswith(f"{prefix}-") for n in list_namespaces()):
            subprocess.run([PYTHON, "-m", "framework.sim", "down", "--prefix", prefix],
                           capture_output=True, cwd=ROOT, timeout=60)
        for leftover in run_dir().glob(f"sim-{prefix}.*"):  # log, control socket
            leftover.unlink(missing_ok=True)
    if read_state(PREFIX) or any(n.startswith(f"{PREFIX}-") for n in list_namespaces()):
        subprocess.run([PYTHON, "-m", "framework.sim", "down", "--prefix", PREFIX],
                       capture_output=True, cwd=ROOT, timeout=60)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="module")
def start_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SimLabRun]]:
    """Start a sim lab for these phones (``hil sim up``); taken down after the module."""
    runs: list[SimLabRun] = []

    def start(entries: list[PhoneEntry], **sim: Any) -> SimLabRun:
        _clean_leftovers()
        run = SimLabRun(tmp_path_factory.mktemp("simlab"), entries, **sim)
        runs.append(run)
        return run.up()

    yield start
    for run in runs:
        run.down()


@pytest.fixture(scope="module")
def start_kea(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Kea]]:
    started: list[Kea] = []

    def start(*args: Any, **kwargs: Any) -> Kea:
        kea = Kea(tmp_path_factory.mktemp("kea"))
        started.append(kea)
        return kea.start(*args, **kwargs)

    yield start
    for kea in started:
        kea.stop()


@pytest.fixture(scope="module")
def www(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The document root every witness server serves from."""
    return tmp_path_factory.mktemp("www")


@pytest.fixture(scope="module")
def witnesses(www: Path) -> Iterator[Witnesses]:
    servers = Witnesses(www)
    yield servers
    servers.stop()
