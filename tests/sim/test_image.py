"""The simulated firmware image (framework/sim/image.py): an AudioCodes .img container."""

from __future__ import annotations

import pytest

from framework.imgcontainer import SECTIONS_2_2, SECTIONS_3_4, read_container
from framework.sim.image import (
    HEADER_SIZE,
    ImageError,
    build_image,
    parse_header,
    verify_image,
)


def test_header_round_trip_and_the_decision_fits_one_tftp_block() -> None:
    image = build_image("440HD", "2.2.8.70", b"payload" * 100)
    header = parse_header(image[:HEADER_SIZE])
    assert (header.model, header.version) == ("440HD", "2.2.8.70")
    assert verify_image(image) == header
    assert HEADER_SIZE <= 512


@pytest.mark.parametrize(("version", "family"), [("2.2.8.70", SECTIONS_2_2),
                                                 ("UC_3.4.6.604.1", SECTIONS_3_4)])
def test_an_image_carries_the_sections_of_its_family(version: str,
                                                     family: tuple[str, ...]) -> None:
    container = read_container(build_image("C450HD", version, b"abc"))
    names = [s.name for s in container.sections]
    assert names[0] == "Release" and set(family) <= set(names)
    phone = container.section("phone.img")
    assert phone is not None and container.payload(phone) == b"abc"


@pytest.mark.parametrize(("data", "why"), [
    (b"short", "truncated at offset 5"),
    (b"X" * 200, "bad magic 0x58585858 at offset 0"),
    (build_image("440HD", "1.0", b"abc")[:-2], "truncated"),
    (build_image("440HD", "1.0", b"abcd")[:-1] + b"x", "section 'phone.img' .* checksum"),
])
def test_bad_images_are_named(data: bytes, why: str) -> None:
    with pytest.raises(ImageError, match=why):
        verify_image(data)


def test_header_fields_are_bounded() -> None:
    with pytest.raises(ImageError, match="model"):
        build_image("", "1.0")
    with pytest.raises(ImageError, match="version"):
        build_image("440HD", "9" * 33)
