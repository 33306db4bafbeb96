"""A firmware release: one image per phone model, each named by its header (model, version).

QA receives a release as files (``440HD.img``, ``420HD.img``...). Which model and version
a file holds is read by an :class:`ImageReader`: the AudioCodes ``.img`` container
(framework.release.container, registered as ``audiocodes-img``; the simulated phones'
images are such containers too). Another image format is another reader registered under
its own name (``register_reader``), not an ``if`` here.

Usage::

    release = load_release([Path("release-2.2.9/")])
    image = release.for_model("440HD")      # FirmwareImage(file, model, version, sha256)
    release.to_dict()                       # what the certification record names
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from framework.errors import HilError, InputError

#: Larger files are not firmware images of this family (a guard against a wrong path).
MAX_IMAGE_BYTES = 256 * 1024 * 1024


class ReleaseError(InputError):
    """The release given is unusable; one line naming the file and what is wrong."""


class ImageFormatError(HilError, ValueError):
    """A reader does not recognise the bytes; the message says why."""


@dataclass(frozen=True)
class ImageInfo:
    """What an image header says about the image."""

    model: str
    version: str


class ImageReader(Protocol):
    """Reads model and version from an image's bytes (raises ImageFormatError if not its
    format). ``name`` is how a rig or a user selects it. A reader with a true
    ``uses_file_name`` is also given the file's name (``read(data, file_name=...)``)."""

    name: str

    def read(self, data: bytes) -> ImageInfo: ...


READERS: dict[str, ImageReader] = {}


def register_reader(reader: ImageReader) -> ImageReader:
    """Make ``reader`` available to :func:`load_release` (tried in registration order)."""
    READERS[reader.name] = reader
    return reader


@dataclass(frozen=True)
class FirmwareImage:
    """One image file of a release, as its header names it."""

    path: Path
    model: str
    version: str
    sha256: str
    size: int
    reader: str

    @property
    def file(self) -> str:
        return self.path.name

    def data(self) -> bytes:
        """The image bytes, checked against the SHA-256 taken when the release was read."""
        data = self.path.read_bytes()
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise ReleaseError(f"{self.path}: changed since the release was read "
                               f"(SHA-256 no longer {self.sha256[:12]}...)")
        return data

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "model": self.model, "version": self.version,
                "sha256": self.sha256, "bytes": self.size, "reader": self.reader}


@dataclass(frozen=True)
class Release:
    """The images QA certifies together; at most one per model (unless a restore set)."""

    images: tuple[FirmwareImage, ...]

    def for_model(self, model: str, version: str | None = None) -> FirmwareImage | None:
        """The image for a phone of ``model`` (a rig model such as ``440HD``), at
        ``version`` when given."""
        from framework.phone import model_matches

        for image in self.images:
            if model_matches(model, image.model) and version in (None, image.version):
                return image
        return None

    @property
    def versions(self) -> list[str]:
        return sorted({i.version for i in self.images})

    def to_dict(self) -> dict[str, Any]:
        return {"versions": self.versions, "images": [i.to_dict() for i in self.images]}


def read_image(path: Path, readers: Iterable[ImageReader] | None = None) -> FirmwareImage:
    """One image file through the first reader that recognises it."""
    try:
        size = path.stat().st_size
        if size > MAX_IMAGE_BYTES:
            raise ReleaseError(f"{path}: {size} bytes, more than any firmware image "
                               f"({MAX_IMAGE_BYTES} bytes)")
        data = path.read_bytes()
    except OSError as exc:
        raise ReleaseError(f"{path}: cannot read ({exc.strerror or exc})") from None
    why = []
    for reader in readers if readers is not None else READERS.values():
        try:
            info = (reader.read(data, file_name=path.name)  # type: ignore[call-arg]
                    if getattr(reader, "uses_file_name", False) else reader.read(data))
        except ImageFormatError as exc:
            why.append(f"{reader.name}: {exc}")
            continue
        return FirmwareImage(path=path, model=info.model, version=info.version,
                             sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                             reader=reader.name)
    raise ReleaseError(f"{path}: not a firmware image ({'; '.join(why) or 'no image reader'})")


def load_release(paths: Sequence[Path], *, reader: str | None = None,
                 one_per_model: bool = True) -> Release:
    """The release in ``paths`` (files, or directories whose regular files are all images).

    Raises ReleaseError (one line, naming the path) for a missing path, an empty
    directory, a file no reader recognises, or two images for one model.
    """
    if reader is not None and reader not in READERS:
        raise ReleaseError(f"image reader {reader!r}: unknown; known: {', '.join(READERS)}")
    readers = [READERS[reader]] if reader else None
    if not paths:
        raise ReleaseError("no firmware image given")
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            if not found:
                raise ReleaseError(f"{path}: no image files in this directory")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise ReleaseError(f"{path}: no such file or directory")
    images: list[FirmwareImage] = []
    for file in files:
        image = read_image(file, readers)
        clash = next((i for i in images if i.model == image.model and
                      (one_per_model or i.version == image.version)), None)
        if clash is not None:
            raise ReleaseError(f"{file}: a second image for {image.model} (already "
                               f"{clash.path}, version {clash.version})")
        images.append(image)
    return Release(tuple(images))
