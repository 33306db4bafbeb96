"""Real AudioCodes .img containers: sections of both families, checksums, names, inspect."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from framework.cli import app
from framework.imgcontainer import (
    HEADER_SIZE,
    SECTION_HEADER_SIZE,
    SECTIONS_2_2,
    SECTIONS_3_4,
    build_container,
    name_from_file,
    read_container,
    release_text,
)
from framework.release import load_release
from framework.release.container import inspect_file
from framework.sim.image import build_image, verify_image


def family(names: tuple[str, ...], model: str = "440HD", version: str = "2.2.16.704") -> bytes:
    """Every section kind of a family, random data of odd lengths (padding exercised)."""
    return build_container([(name, release_text(model, version) if name == "Release"
                             else os.urandom(97 + 31 * i)) for i, name in enumerate(names)])


def test_every_section_of_both_families_is_read_and_verified() -> None:
    for names in (SECTIONS_2_2, SECTIONS_3_4):
        container = read_container(family(names))
        assert [s.name for s in container.sections] == list(names)
        assert all(s.checksum_ok and s.aligned_length % 4 == 0 for s in container.sections)
        assert [s.length for s in container.sections] == [
            len(release_text("440HD", "2.2.16.704")) if n == "Release" else 97 + 31 * i
            for i, n in enumerate(names)]


def test_the_layout_is_little_endian_as_field_tools_read_it() -> None:
    data = build_container([("psbl.bin", b"\x01\x02\x03")], hw_version=7)
    assert struct.unpack_from("<5I", data) == (0xAAAAAAAA, 7, HEADER_SIZE, 6, 1)
    magic, length, name = struct.unpack_from("<2I64s", data, HEADER_SIZE)
    assert (magic, length, name.rstrip(b"\0")) == (0xBBBBBBBB, SECTION_HEADER_SIZE, b"psbl.bin")
    assert struct.unpack_from("<5I", data, HEADER_SIZE + 72) == (0, 0, 6, 3, 4)
    assert len(data) == HEADER_SIZE + SECTION_HEADER_SIZE + 4


def test_the_release_section_names_model_and_version(tmp_path: Path) -> None:
    path = tmp_path / "whatever.img"
    path.write_bytes(family(SECTIONS_3_4, "C450HD", "UC_3.4.6.604.1"))
    report = inspect_file(path)
    assert (report.ok, report.model, report.version) == (True, "C450HD", "UC_3.4.6.604.1")
    image = load_release([path]).images[0]
    assert (image.model, image.version, image.reader) == ("C450HD", "UC_3.4.6.604.1",
                                                         "audiocodes-img")


@pytest.mark.parametrize(("name", "given", "expected"), [
    ("420HD_2.2.16.704.img", None, ("420HD", "2.2.16.704")),
    ("C450HD_UC_3.4.6.604.1.img", None, ("C450HD", "UC_3.4.6.604.1")),
    ("440HD.img", "2.2.8.61", ("440HD", "2.2.8.61")),
    ("440HD.img", None, ("440HD", None)),
])
def test_without_a_release_section_the_file_name_then_the_flag(
        tmp_path: Path, name: str, given: str | None, expected: tuple[str, str | None]) -> None:
    path = tmp_path / name
    path.write_bytes(family(SECTIONS_2_2))  # 2.2.x images carry no Release section
    report = inspect_file(path, given)
    assert (report.model, report.version) == expected
    assert report.ok is (expected[1] is not None)
    if not report.ok:
        assert report.error == f"{path}: version unknown (no Release section says it, nor " \
                               f"the file name; give --firmware-version)"
    assert name_from_file("notes.txt") == (None, None)


def _bad_section(data: bytes) -> bytes:
    at = read_container(data).section("rootfs.sqfs").offset + 5  # type: ignore[union-attr]
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


@pytest.mark.parametrize(("damage", "line"), [
    (lambda d: b"\x00\x00\x00\x00" + d[4:], "bad magic 0x00000000 at offset 0 "
                                            "(expected 0xAAAAAAAA)"),
    (lambda d: d[:HEADER_SIZE] + b"\x00" * 4 + d[HEADER_SIZE + 4:],
     f"bad section magic 0x00000000 at offset {HEADER_SIZE} (section 1 of 6"),
    (_bad_section, "section 'rootfs.sqfs' (data at offset"),
    (lambda d: d[:-50], "truncated at offset"),
    (lambda d: d[:10], "truncated at offset 10: the header needs 20 bytes"),
])
def test_a_bad_image_is_one_line_naming_the_file_and_where(tmp_path: Path, damage: object,
                                                           line: str) -> None:
    path = tmp_path / "420HD_2.2.16.704.img"
    path.write_bytes(damage(family(SECTIONS_2_2)))  # type: ignore[operator]
    report = inspect_file(path)
    assert not report.ok and report.error is not None
    assert report.error.startswith(f"{path}: ") and line in report.error
    assert len(report.error.splitlines()) == 1


def test_the_sim_phone_reads_the_same_container() -> None:
    image = build_image("440HD", "2.2.9.0", b"p" * 1000)
    assert read_container(image).section("Release") is not None
    assert verify_image(image).version == "2.2.9.0"


def test_hil_release_inspect_json_and_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "420HD_2.2.16.704.img"
    good.write_bytes(family(SECTIONS_2_2))
    uc = tmp_path / "c450.img"
    uc.write_bytes(family(SECTIONS_3_4, "C450HD", "UC_3.4.6.604.1"))
    bad = tmp_path / "440HD_2.2.16.704.img"
    bad.write_bytes(_bad_section(family(SECTIONS_2_2)))
    runner = CliRunner()
    result = runner.invoke(app, ["release", "inspect", str(good), str(uc), "--json"])
    assert result.exit_code == 0, result.output
    images = json.loads(result.stdout)
    assert [(i["model"], i["version"], i["ok"]) for i in images] == [
        ("420HD", "2.2.16.704", True), ("C450HD", "UC_3.4.6.604.1", True)]
    assert images[1]["sections"][-1] == {"name": "end.section", "length": 97 + 31 * 6,
                                         "checksum_ok": True}
    result = runner.invoke(app, ["release", "inspect", str(good), str(bad)])
    assert result.exit_code == 1
    assert "rootfs.sqfs" in result.stdout and "BAD" in result.stdout
    assert result.stderr.strip() == inspect_file(bad).error
    assert "Traceback" not in result.output
