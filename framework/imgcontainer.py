"""The AudioCodes ``.img`` firmware container, as field tools parse it (pure bytes, no I/O).

All integers are little-endian u32. The file is a header followed by its sections::

    header   magic 0xAAAAAAAA, hardware version, header length, checksum, number of sections
    section  magic 0xBBBBBBBB, section header length, name (64 bytes ASCII, NUL-padded),
             type, version, checksum, data length, aligned section length
             then the data, padded to the aligned section length

A section's data starts ``section header length`` bytes after its magic; the next section
starts ``aligned section length`` bytes after that. A section's checksum is the byte sum of
its data (u32, wrapping). The header checksum's coverage differs between tools: it is read
and reported, not judged; :func:`build_container` writes the u32 sum of the section
checksums.

2.2.x images carry ``psbl.bin``, ``ram_zimage.bin``, ``rootfs.sqfs``, ``phone.img``,
``section.map``, ``flasher``; 3.4.x images carry ``bootloader.img``, ``rootfs.ext4``,
``phone.img``, ``section.map``, ``Flasher``, ``Release``, ``end.section``.

The ``Release`` section, where an image says its model and version, is text in the form of
``/etc/release``: ``KEY=value`` lines (``MODEL=440HD``, ``VERSION=2.2.16.704``; other keys
are kept, blank lines and ``#`` comments ignored). :func:`release_fields` reads it.

This module sits at the lowest layer so that both framework.release (the reader QA uses)
and framework.sim (the virtual phone) read the same format.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from framework.errors import HilError

HEADER_MAGIC = 0xAAAAAAAA
SECTION_MAGIC = 0xBBBBBBBB
_HEADER = struct.Struct("<5I")
_SECTION = struct.Struct("<2I64s5I")
HEADER_SIZE = _HEADER.size          # 20 bytes
SECTION_HEADER_SIZE = _SECTION.size  # 92 bytes
NAME_SIZE = 64

SECTIONS_2_2 = ("psbl.bin", "ram_zimage.bin", "rootfs.sqfs", "phone.img", "section.map",
                "flasher")
SECTIONS_3_4 = ("bootloader.img", "rootfs.ext4", "phone.img", "section.map", "Flasher",
                "Release", "end.section")
RELEASE = "Release"


class ContainerError(HilError, ValueError):
    """The bytes are not a sound container; the message names the offset or section."""


@dataclass(frozen=True)
class Section:
    """One section as read: where its data is and whether its checksum matches."""

    name: str
    type: int
    version: int
    checksum: int
    offset: int          # of the data in the file
    length: int          # data length
    aligned_length: int
    checksum_ok: bool


@dataclass(frozen=True)
class Container:
    """A container's header fields and sections (``data`` is the whole file)."""

    hw_version: int
    header_length: int
    checksum: int
    sections: tuple[Section, ...]
    data: bytes

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def payload(self, section: Section) -> bytes:
        return self.data[section.offset:section.offset + section.length]

    @property
    def bad_sections(self) -> list[Section]:
        return [s for s in self.sections if not s.checksum_ok]


def byte_sum(data: bytes) -> int:
    """The section checksum: the sum of the bytes, u32 wrapping."""
    return sum(data) & 0xFFFFFFFF


def read_container(data: bytes, *, verify: bool = True, partial: bool = False) -> Container:
    """Parse ``data``. With ``verify`` a section whose checksum does not match raises
    ContainerError; without it the section is returned with ``checksum_ok`` False.

    ``partial`` reads only the sections wholly inside ``data`` (the head of a file being
    downloaded); otherwise a section reaching past the end is a truncated file.
    """
    if len(data) < HEADER_SIZE:
        raise ContainerError(f"truncated at offset {len(data)}: the header needs "
                             f"{HEADER_SIZE} bytes")
    magic, hw_version, header_length, checksum, count = _HEADER.unpack_from(data)
    if magic != HEADER_MAGIC:
        raise ContainerError(f"bad magic 0x{magic:08X} at offset 0 "
                             f"(expected 0x{HEADER_MAGIC:08X})")
    if header_length < HEADER_SIZE:
        raise ContainerError(f"header length {header_length} at offset 8 is under "
                             f"{HEADER_SIZE} bytes")
    sections: list[Section] = []
    offset = header_length
    for index in range(count):
        if offset + SECTION_HEADER_SIZE > len(data):
            if partial:
                break
            raise ContainerError(f"truncated at offset {offset}: section {index + 1} of "
                                 f"{count} needs a {SECTION_HEADER_SIZE}-byte header, the "
                                 f"file has {len(data) - offset} bytes left")
        (smagic, header_len, raw_name, stype, sversion, schecksum, length,
         aligned) = _SECTION.unpack_from(data, offset)
        if smagic != SECTION_MAGIC:
            raise ContainerError(f"bad section magic 0x{smagic:08X} at offset {offset} "
                                 f"(section {index + 1} of {count}, expected "
                                 f"0x{SECTION_MAGIC:08X})")
        name = raw_name.split(b"\x00", 1)[0].decode("ascii", "replace")
        if header_len < SECTION_HEADER_SIZE or aligned < length:
            raise ContainerError(f"section {name!r} at offset {offset}: header length "
                                 f"{header_len}, data {length}, aligned {aligned} "
                                 f"do not fit together")
        start = offset + header_len
        if start + length > len(data):
            if partial:
                break
            raise ContainerError(f"truncated at offset {len(data)}: section {name!r} at "
                                 f"offset {offset} needs {length} data bytes from offset "
                                 f"{start}")
        ok = byte_sum(data[start:start + length]) == schecksum
        if verify and not ok:
            raise ContainerError(f"section {name!r} at offset {offset}: checksum "
                                 f"0x{schecksum:08X} does not match its data "
                                 f"(0x{byte_sum(data[start:start + length]):08X})")
        sections.append(Section(name, stype, sversion, schecksum, start, length, aligned, ok))
        offset = start + aligned
    return Container(hw_version, header_length, checksum, tuple(sections), data)


def release_fields(text: bytes) -> dict[str, str]:
    """``KEY=value`` lines of a Release section (NUL padding, blanks, ``#`` ignored)."""
    fields: dict[str, str] = {}
    for line in text.rstrip(b"\x00").decode("ascii", "replace").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            fields[key.strip().upper()] = value.strip().strip('"')
    return fields


def release_text(model: str, version: str) -> bytes:
    """The Release section for ``model`` at ``version``."""
    return f"MODEL={model}\nVERSION={version}\n".encode("ascii")


def model_version(container: Container) -> tuple[str | None, str | None]:
    """Model and version as the container's Release section states them (None if not)."""
    release = container.section(RELEASE)
    if release is None:
        return None, None
    fields = release_fields(container.payload(release))
    return fields.get("MODEL") or None, fields.get("VERSION") or None


_FILE_NAME = re.compile(r"^(?P<model>[A-Za-z]*\d{3}[A-Za-z]*)(?:[_-](?P<version>"
                        r"(?:UC_)?\d+(?:\.\d+)+))?\.img$", re.IGNORECASE)


def name_from_file(file_name: str) -> tuple[str | None, str | None]:
    """Model and version a file name gives: ``420HD_2.2.16.704.img`` gives both,
    ``440HD.img`` only the model, anything else neither."""
    match = _FILE_NAME.match(file_name)
    if match is None:
        return None, None
    return match["model"].upper(), match["version"]


def build_container(sections: Sequence[tuple[str, bytes]], *, hw_version: int = 0,
                    align: int = 4, types: dict[str, int] | None = None) -> bytes:
    """A container of ``sections`` (name, data) in that order, each padded with NULs to a
    multiple of ``align``."""
    body = bytearray()
    total = 0
    for index, (name, data) in enumerate(sections):
        raw = name.encode("ascii")
        if not raw or len(raw) >= NAME_SIZE:
            raise ContainerError(f"section name {name!r} must be 1..{NAME_SIZE - 1} "
                                 f"ASCII characters")
        aligned = -(-len(data) // align) * align if align > 1 else len(data)
        checksum = byte_sum(data)
        total += checksum
        body += _SECTION.pack(SECTION_MAGIC, SECTION_HEADER_SIZE, raw, (types or {}).get(
            name, index), 0, checksum, len(data), aligned)
        body += data + b"\x00" * (aligned - len(data))
    header = _HEADER.pack(HEADER_MAGIC, hw_version, HEADER_SIZE, total & 0xFFFFFFFF,
                          len(sections))
    return header + bytes(body)
