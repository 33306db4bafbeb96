"""Restore points: what each phone ran before the lab installed a release on it.

``hil run --firmware`` keeps, per rig, ``<reports>/releases/restore-<rig>.json`` (per
phone: model, the version it ran before, the run that changed it) and a copy of every
image it installed in ``<reports>/releases/images/<sha256>.img``, so that ``hil run
--restore`` can put each phone back on its previous release even when nobody kept those
images. Files only: nothing here touches the lab.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from framework.release.images import FirmwareImage, Release, ReleaseError, read_image

if TYPE_CHECKING:
    from framework.release.install import InstallResult

#: Where installs keep what each phone ran before, and a copy of every image installed,
#: so that ``--restore`` can put the previous release back: ``<reports>/releases/``.
RELEASES_DIR = "releases"


def releases_dir(reports_dir: Path) -> Path:
    return reports_dir / RELEASES_DIR


def restore_point_file(reports_dir: Path, rig_name: str) -> Path:
    """``<reports>/releases/restore-<rig>.json``: per phone, what it ran before the last
    install the lab made on that rig."""
    return releases_dir(reports_dir) / f"restore-{rig_name}.json"


def load_restore_point(path: Path, rig_name: str) -> dict[str, dict[str, str]]:
    """The phones of a restore point; ReleaseError (one line) when there is none."""
    try:
        phones = json.loads(path.read_text())["phones"]
        if not isinstance(phones, dict):
            raise TypeError
        return phones
    except (OSError, ValueError, KeyError, TypeError):
        raise ReleaseError(f"--restore: no restore point for rig {rig_name!r} ({path}): no "
                           f"release was installed on it by the lab") from None


def restore_point_error(reports_dir: Path, rig_name: str) -> str | None:
    """For ``hil run``, before anything starts: why ``--restore`` cannot work on the rig
    named ``rig_name``, else None."""
    try:
        load_restore_point(restore_point_file(reports_dir, rig_name), rig_name)
    except ReleaseError as exc:
        return str(exc)
    return None


def keep_images(reports_dir: Path, release: Release) -> None:
    """Copy each image into the lab's image store (by SHA-256) for a later restore."""
    store = releases_dir(reports_dir) / "images"
    store.mkdir(parents=True, exist_ok=True)
    for image in release.images:
        target = store / f"{image.sha256}.img"
        if not target.exists():
            shutil.copyfile(image.path, target)


def stored_images(reports_dir: Path) -> list[FirmwareImage]:
    """Every readable image of the lab's image store."""
    store = releases_dir(reports_dir) / "images"
    out = []
    for path in sorted(store.glob("*.img")) if store.is_dir() else []:
        with contextlib.suppress(ReleaseError):
            out.append(read_image(path))
    return out


def save_restore_point(reports_dir: Path, rig_name: str, run_id: str,
                       results: Mapping[str, InstallResult]) -> None:
    """What each phone ran before this install (kept for phones that changed; a phone
    the install did not change keeps its earlier entry)."""
    path = restore_point_file(reports_dir, rig_name)
    try:
        point = json.loads(path.read_text())
    except (OSError, ValueError):
        point = {"rig": rig_name, "phones": {}}
    for name, r in results.items():
        if r.outcome == "installed" and r.version_before:
            point["phones"][name] = {"model": r.model, "version": r.version_before,
                                     "run": run_id}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(point, indent=1, sort_keys=True))
