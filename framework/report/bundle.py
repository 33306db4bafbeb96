"""`hil report bundle`: one ``.tar.gz`` of a run that ``hil report verify`` accepts as is.

The archive holds one directory, ``<run-id>/``, with every file of the run and its
MANIFEST.json; every path in the run is relative, so the bundle verifies wherever it is
unpacked. Reading one back (:func:`extract`) is careful: a member with an absolute path,
a ``..`` part, or that is not a regular file or a directory (links, devices) refuses the
whole bundle before anything is written.
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

from framework.errors import InputError
from framework.report.manifest import MANIFEST, scan

#: Bundles larger than this (unpacked) are refused: not a run of this lab.
MAX_BYTES = 20 * 1024**3


class BundleError(InputError):
    """A bundle that cannot be read or is refused; names the file and the member."""


def write(run_dir: Path, out: Path) -> Path:
    """Write the bundle of ``run_dir`` (which must hold MANIFEST.json) to ``out``."""
    run_dir = run_dir.resolve()
    if not (run_dir / MANIFEST).is_file():
        raise BundleError(f"{run_dir}: no {MANIFEST}")
    target = out.resolve()
    if target.is_relative_to(run_dir):
        raise BundleError(f"{out}: inside the run directory; write the bundle elsewhere")
    names = [s.name for s in scan(run_dir)] + [MANIFEST]
    tmp = target.with_name(f".{target.name}.part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tmp, "w:gz", dereference=True) as tar:  # links: their files
            for name in sorted(names):
                tar.add(run_dir / name, arcname=f"{run_dir.name}/{name}", recursive=False)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise BundleError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return target


def _check(bundle: Path, members: list[tarfile.TarInfo]) -> None:
    total = 0
    for m in members:
        path = PurePosixPath(m.name)
        if path.is_absolute() or m.name.startswith(("/", "\\")):
            raise BundleError(f"{bundle}: refused: member {m.name!r} has an absolute path")
        if ".." in path.parts:
            raise BundleError(f"{bundle}: refused: member {m.name!r} leaves the bundle (..)")
        if not (m.isfile() or m.isdir()):
            raise BundleError(f"{bundle}: refused: member {m.name!r} is a link or a special "
                              "file")
        total += m.size
    if total > MAX_BYTES:
        raise BundleError(f"{bundle}: refused: more than {MAX_BYTES} bytes unpacked")


def extract(bundle: Path, dest: Path) -> Path:
    """Unpack ``bundle`` into ``dest`` (checked first) and return its run directory: the
    directory holding MANIFEST.json (``dest`` itself or its one top-level directory)."""
    try:
        with tarfile.open(bundle, "r:*") as tar:
            members = tar.getmembers()
            _check(bundle, members)
            tar.extractall(dest, members=members, filter="data")
    except FileNotFoundError:
        raise BundleError(f"{bundle}: no such file") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise BundleError(f"{bundle}: not a readable .tar.gz ({exc})") from None
    if (dest / MANIFEST).exists():
        return dest
    tops = [p for p in dest.iterdir()]
    if len(tops) == 1 and tops[0].is_dir():
        return tops[0]
    raise BundleError(f"{bundle}: not a run bundle (no {MANIFEST} at its top or in its one "
                      "directory)")


def is_bundle(path: Path) -> bool:
    return path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar"))
