"""Fixtures for the simulated rig's tests: labs started through `python -m framework.sim`,
Kea, and independent provisioning servers, all in namespaces prefixed ``hilt-m``."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from framework.netns import have_privileges
from tests.sim.harness import PREFIX, PYTHON, ROOT, Kea, PhoneEntry, SimLabRun, Witnesses

needs_netns = pytest.mark.skipif(not have_privileges()[0],
                                 reason=f"needs network namespaces: {have_privileges()[1]}")


def _clean_leftovers() -> None:
    """A lab left behind by a crashed run would make `up` refuse: take it down first."""
    subprocess.run([PYTHON, "-m", "framework.sim", "down", "--prefix", PREFIX],
                   capture_output=True, cwd=ROOT, timeout=60)


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
