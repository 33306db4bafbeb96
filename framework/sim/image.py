"""The simulated 400HD firmware image: an AudioCodes ``.img`` container (framework.imgcontainer).

A real 400HD checks the image header before it downloads the whole file and installs only
an image for its own model with a different version (Admin Manual 10.2, "the phone checks
the image header and downloads the whole image only if the version differs"). The virtual
phone does the same with the container QA's tools read (``hil release inspect``), so tests
serve upgrade, same-version and wrong-model images and watch the phone's decision on the
wire.

The images built here put the ``Release`` section (``MODEL=...``/``VERSION=...`` lines)
first, so the phone decides from the first ``HEADER_SIZE`` bytes (one 512-byte TFTP block);
then come the other sections of the firmware family (2.2.x, or 3.4.x for ``UC_``/``3.``
versions), the payload as ``phone.img`` and, for 3.4.x, an empty ``end.section`` last. The whole image is installed only when every section's
checksum matches.
"""

from __future__ import annotations

from dataclasses import dataclass

from framework.errors import HilError
from framework.imgcontainer import (
    RELEASE,
    SECTIONS_2_2,
    SECTIONS_3_4,
    ContainerError,
    build_container,
    model_version,
    read_container,
    release_text,
)

END = "end.section"

#: The head the phone reads before it decides to download the whole image.
HEADER_SIZE = 512


class ImageError(HilError, ValueError):
    """The bytes are not a valid firmware image for the phone; the message says why."""


@dataclass(frozen=True)
class ImageHeader:
    """What the phone reads from an image: its model and version."""

    model: str
    version: str


def family_sections(version: str) -> tuple[str, ...]:
    """The section names of the firmware family ``version`` belongs to."""
    return SECTIONS_3_4 if version.startswith(("UC_", "3.")) else SECTIONS_2_2


def build_image(model: str, version: str, payload: bytes = b"") -> bytes:
    """A complete container for ``model`` at ``version``, ``payload`` as ``phone.img``."""
    for what, value, size in (("model", model, 16), ("version", version, 32)):
        raw = value.encode("ascii")
        if not raw or len(raw) > size:
            raise ImageError(f"image {what} {value!r} must be 1..{size} ASCII characters")
    family = family_sections(version)
    sections = [(RELEASE, release_text(model, version))]
    sections += [(name, f"{name} {model} {version}\n".encode("ascii")) for name in family
                 if name not in (RELEASE, "phone.img", END)]
    sections.append(("phone.img", payload))
    if END in family:
        sections.append((END, b""))
    return build_container(sections)


def _header(data: bytes, *, partial: bool) -> ImageHeader:
    try:
        container = read_container(data, partial=partial)
    except ContainerError as exc:
        raise ImageError(str(exc)) from None
    model, version = model_version(container)
    if model is None or version is None:
        where = f"in the first {len(data)} bytes" if partial else "in the image"
        raise ImageError(f"no Release section with MODEL and VERSION {where}")
    return ImageHeader(model=model, version=version)


def parse_header(data: bytes) -> ImageHeader:
    """Model and version from the head of an image (its first ``HEADER_SIZE`` bytes)."""
    return _header(data, partial=True)


def verify_image(data: bytes) -> ImageHeader:
    """Parse and check a complete image: every section present and its checksum matching."""
    return _header(data, partial=False)
