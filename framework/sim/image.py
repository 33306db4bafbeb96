"""The simulated 400HD firmware image: a fixed header in front of an opaque payload.

A real 400HD checks the image header before it downloads the whole file and installs only
an image for its own model with a different version (Admin Manual 10.2, "the phone checks
the image header and downloads the whole image only if the version differs"). The virtual
phone does the same with this header, so tests can serve upgrade, same-version and
wrong-model images and watch the phone's decision on the wire.

Header layout (all integers big-endian), ``HEADER_SIZE`` = 96 bytes, which fits in the
first 512-byte TFTP block::

    offset  size  field
    0       8     magic      b"AUDC400\\x00"
    8       16    model      ASCII, NUL-padded, e.g. b"440HD"
    24      32    version    ASCII, NUL-padded, e.g. b"2.2.8.61"
    56      8     length     payload length in bytes (unsigned)
    64      32    sha256     SHA-256 digest of the payload

The payload follows the header immediately; a complete image is ``HEADER_SIZE + length``
bytes long.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from framework.errors import HilError

MAGIC = b"AUDC400\x00"
_LAYOUT = struct.Struct(">8s16s32sQ32s")
HEADER_SIZE = _LAYOUT.size


class ImageError(HilError, ValueError):
    """The bytes are not a valid simulated firmware image; the message says why."""


@dataclass(frozen=True)
class ImageHeader:
    """The fields of a firmware image header."""

    model: str
    version: str
    length: int
    sha256: bytes


def build_image(model: str, version: str, payload: bytes = b"") -> bytes:
    """A complete image (header + payload) for ``model`` at ``version``."""
    for what, value, size in (("model", model, 16), ("version", version, 32)):
        raw = value.encode("ascii")
        if not raw or len(raw) > size:
            raise ImageError(f"image {what} {value!r} must be 1..{size} ASCII characters")
    header = _LAYOUT.pack(MAGIC, model.encode("ascii"), version.encode("ascii"), len(payload),
                          hashlib.sha256(payload).digest())
    return header + payload


def parse_header(data: bytes) -> ImageHeader:
    """Read the header at the start of ``data`` (at least ``HEADER_SIZE`` bytes)."""
    if len(data) < HEADER_SIZE:
        raise ImageError(f"image too short for a header: {len(data)} of {HEADER_SIZE} bytes")
    magic, model, version, length, digest = _LAYOUT.unpack_from(data)
    if magic != MAGIC:
        raise ImageError(f"not a 400HD firmware image (magic {magic!r})")
    try:
        return ImageHeader(model=model.rstrip(b"\x00").decode("ascii"),
                           version=version.rstrip(b"\x00").decode("ascii"),
                           length=length, sha256=digest)
    except UnicodeDecodeError as exc:
        raise ImageError("image header model or version is not ASCII") from exc


def verify_image(data: bytes) -> ImageHeader:
    """Parse and check a complete image: payload length and SHA-256 must match the header."""
    header = parse_header(data)
    payload = data[HEADER_SIZE:]
    if len(payload) != header.length:
        raise ImageError(f"image payload is {len(payload)} bytes, header says {header.length}")
    if hashlib.sha256(payload).digest() != header.sha256:
        raise ImageError("image payload SHA-256 does not match its header")
    return header
