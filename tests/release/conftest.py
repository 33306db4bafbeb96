"""Simulated benches for the release tests: their own prefix (hilt-f<pid>), short boots."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from framework.runner.options import RunOptions
from framework.runner.session import LabSession
from framework.sim.image import build_image
from framework.sim.rigfile import write_sim_rig

BASE = "2.2.8.61"  # what write_sim_rig's phones run at power-up
#: Big enough that "only the header" and "the whole image" differ by 100+ TFTP blocks.
PAYLOAD = 64 * 1024


def prefix(tag: str) -> str:
    return f"hilt-f{tag}{os.getpid() % 1000}"


def write_release(directory: Path, version: str, models: Sequence[str],
                  payload: int = PAYLOAD) -> Path:
    """A release directory: ``<MODEL>.img`` per model at ``version`` (random payload)."""
    directory.mkdir(parents=True, exist_ok=True)
    for model in models:
        (directory / f"{model}.img").write_bytes(build_image(model, version, os.urandom(payload)))
    return directory


def start_lab(tmp: Path, tag: str, phones: int, *, run_id: str | None = None,
              release_deviations: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
              ) -> LabSession:
    rig = tmp / f"rig-{tag}.yaml"
    if not rig.exists():
        write_sim_rig(rig, prefix=prefix(tag), phones=phones, boot_time_s=0.2,
                      release_deviations=release_deviations)
    opts = RunOptions(rig_path=rig, reports_dir=tmp / "reports", settle_s=0.4,
                      boot_timeout_s=20, request_timeout_s=3, run_id=run_id)
    return LabSession(opts).start()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabSession]:
    """Three virtual phones (440HD, 405HD, 420HD) in one session shared by a module."""
    session = start_lab(tmp_path_factory.mktemp("release"), "m", 3)
    try:
        yield session
    finally:
        session.stop()
