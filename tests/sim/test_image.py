"""The simulated firmware image header (framework/sim/image.py)."""

from __future__ import annotations

import pytest

from framework.sim.image import (
    HEADER_SIZE,
    ImageError,
    build_image,
    parse_header,
    verify_image,
)


def test_header_round_trip_and_fits_one_tftp_block() -> None:
    image = build_image("440HD", "2.2.8.70", b"payload" * 100)
    header = parse_header(image[:HEADER_SIZE])
    assert (header.model, header.version, header.length) == ("440HD", "2.2.8.70", 700)
    assert verify_image(image) == header
    assert HEADER_SIZE <= 512


@pytest.mark.parametrize(("data", "why"), [
    (b"short", "too short"),
    (b"X" * 200, "not a 400HD firmware image"),
    (build_image("440HD", "1.0", b"abc")[:-1], "payload is 2 bytes"),
    (build_image("440HD", "1.0", b"abc")[:-1] + b"x", "SHA-256"),
])
def test_bad_images_are_named(data: bytes, why: str) -> None:
    with pytest.raises(ImageError, match=why):
        verify_image(data)


def test_header_fields_are_bounded() -> None:
    with pytest.raises(ImageError, match="model"):
        build_image("", "1.0")
    with pytest.raises(ImageError, match="version"):
        build_image("440HD", "9" * 33)
