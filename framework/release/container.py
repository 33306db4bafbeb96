"""Real AudioCodes ``.img`` firmware images: the release reader and ``hil release inspect``.

The container format (header magic 0xAAAAAAAA, sections with magic 0xBBBBBBBB, a 64-byte
name, byte-sum checksums) is read by framework.imgcontainer, which the simulated phone
reads too. Here it becomes what a release needs: every section checksum verified, and the
model and version taken from where the image says them, in this order:

1. the ``Release`` section (``MODEL=440HD`` / ``VERSION=2.2.16.704`` lines, as
   ``/etc/release``);
2. the file name: ``420HD_2.2.16.704.img`` gives both, ``440HD.img`` only the model;
3. an explicit version (``hil release inspect --firmware-version``).

Usage::

    report = inspect_file(Path("420HD_2.2.16.704.img"))
    report.ok, report.model, report.version, report.sections   # one line in report.error
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.imgcontainer import (
    Container,
    ContainerError,
    model_version,
    name_from_file,
    read_container,
)
from framework.release.images import ImageFormatError, ImageInfo


@dataclass
class ImageReport:
    """What ``hil release inspect`` says about one file."""

    file: str
    model: str | None = None
    version: str | None = None
    sections: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "model": self.model, "version": self.version,
                "sections": self.sections, "ok": self.ok, "error": self.error}


def identify(container: Container, file_name: str = "",
             version: str | None = None) -> tuple[str | None, str | None]:
    """Model and version: the Release section first, then the file name, then ``version``."""
    model, found = model_version(container)
    named_model, named_version = name_from_file(file_name)
    return model or named_model, found or named_version or version


def inspect_bytes(data: bytes, file_name: str, version: str | None = None) -> ImageReport:
    """Read ``data`` (the file ``file_name``); every problem is one line in ``error``."""
    report = ImageReport(file=file_name)
    try:
        container = read_container(data, verify=False)
    except ContainerError as exc:
        report.error = f"{file_name}: {exc}"
        return report
    report.sections = [{"name": s.name, "length": s.length, "checksum_ok": s.checksum_ok}
                       for s in container.sections]
    report.model, report.version = identify(container, file_name, version)
    bad = container.bad_sections
    if bad:
        first = bad[0]
        report.error = (f"{file_name}: section {first.name!r} (data at offset {first.offset}):"
                        f" checksum 0x{first.checksum:08X} does not match its data"
                        + (f" (and {len(bad) - 1} more bad sections)" if len(bad) > 1 else ""))
    elif report.model is None or report.version is None:
        missing = " and ".join(w for w, v in (("model", report.model),
                                              ("version", report.version)) if v is None)
        report.error = (f"{file_name}: {missing} unknown (no Release section says it, nor "
                        f"the file name; give --firmware-version)")
    return report


def inspect_file(path: Path, version: str | None = None) -> ImageReport:
    """:func:`inspect_bytes` on the file at ``path``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return ImageReport(file=str(path), error=f"{path}: cannot read "
                                                 f"({exc.strerror or exc})")
    report = inspect_bytes(data, path.name, version)
    report.file = str(path)
    if report.error:
        report.error = f"{path}{report.error[len(path.name):]}"
    return report


class ContainerImageReader:
    """The release reader for AudioCodes ``.img`` containers (framework.imgcontainer):
    every section checksum must match; model and version as :func:`identify` finds them."""

    name = "audiocodes-img"
    uses_file_name = True

    def read(self, data: bytes, file_name: str = "") -> ImageInfo:
        report = inspect_bytes(data, file_name or "image")
        if report.error is not None:
            raise ImageFormatError(report.error.split(": ", 1)[1])
        assert report.model is not None and report.version is not None
        return ImageInfo(model=report.model, version=report.version)
