"""Reading a release: model and version from each image header, SHA-256, one-line errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from framework.release import (
    ImageFormatError,
    ImageInfo,
    ReleaseError,
    load_release,
    read_image,
    register_reader,
)
from framework.release.images import READERS
from framework.sim.image import build_image


def write(path: Path, model: str, version: str, payload: bytes = b"x" * 1000) -> Path:
    path.write_bytes(build_image(model, version, payload))
    return path


def test_a_directory_release_names_each_image(tmp_path: Path) -> None:
    rel = tmp_path / "rel"
    rel.mkdir()
    a = write(rel / "440HD.img", "440HD", "2.2.9.0")
    write(rel / "420HD.img", "420HD", "2.2.9.0")
    release = load_release([rel])
    image = release.for_model("440HD")
    assert image is not None and image.file == "440HD.img" and image.version == "2.2.9.0"
    assert image.sha256 == hashlib.sha256(a.read_bytes()).hexdigest()
    assert release.for_model("450HD") is None
    assert release.to_dict()["versions"] == ["2.2.9.0"]
    assert {i["file"] for i in release.to_dict()["images"]} == {"440HD.img", "420HD.img"}


def test_a_model_variant_takes_the_image_of_its_family(tmp_path: Path) -> None:
    release = load_release([write(tmp_path / "a.img", "440HD", "2.2.9.0")])
    assert release.for_model("440HDG") is None  # the rig names the family, the image too
    assert release.for_model("440HD") is not None


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d / "missing.img", "missing.img: no such file or directory"),
    (lambda d: (d / "x.img").write_bytes(b"garbage" * 30) and d / "x.img",
     "x.img: not a firmware image (audiocodes-img: bad magic 0x62726167 at offset 0"),
    (lambda d: (d / "t.img").write_bytes(build_image("440HD", "2.2.9.0", b"y" * 100)[:-10])
     and d / "t.img", "t.img: not a firmware image (audiocodes-img: truncated at offset"),
    (lambda d: (d / "empty").mkdir() or d / "empty", "empty: no image files in this directory"),
])
def test_an_unusable_release_is_one_line_naming_the_file(tmp_path: Path, make: object,
                                                         message: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(ReleaseError) as err:
        load_release([path])
    assert message in str(err.value) and len(str(err.value).splitlines()) == 1


def test_two_images_for_one_model_are_refused(tmp_path: Path) -> None:
    a = write(tmp_path / "a.img", "440HD", "2.2.9.0")
    b = write(tmp_path / "b.img", "440HD", "2.2.9.1")
    with pytest.raises(ReleaseError, match=r"b\.img: a second image for 440HD"):
        load_release([a, b])
    assert len(load_release([a, b], one_per_model=False).images) == 2


def test_a_changed_file_is_not_served(tmp_path: Path) -> None:
    a = write(tmp_path / "a.img", "440HD", "2.2.9.0")
    image = load_release([a]).images[0]
    write(a, "440HD", "2.2.9.0", b"z" * 1000)
    with pytest.raises(ReleaseError, match="changed since the release was read"):
        image.data()


def test_a_reader_for_another_format_plugs_in(tmp_path: Path) -> None:
    class TextReader:
        name = "test-text"

        def read(self, data: bytes) -> ImageInfo:
            if not data.startswith(b"FW "):
                raise ImageFormatError("no 'FW ' prefix")
            model, version = data[3:].decode().split()[:2]
            return ImageInfo(model, version)

    register_reader(TextReader())
    try:
        path = tmp_path / "real.bin"
        path.write_bytes(b"FW 450HD 3.4.3.1\n")
        image = read_image(path)
        assert (image.model, image.version, image.reader) == ("450HD", "3.4.3.1", "test-text")
        with pytest.raises(ReleaseError, match="unknown"):
            load_release([path], reader="nope")
    finally:
        READERS.pop("test-text", None)


def test_restore_needs_a_restore_point_of_that_rig(tmp_path: Path) -> None:
    from framework.release.restore import restore_point_error, restore_point_file

    problem = restore_point_error(tmp_path / "reports", "hilt-f0")
    assert problem is not None and "no restore point for rig 'hilt-f0'" in problem
    point = restore_point_file(tmp_path / "reports", "hilt-f0")
    point.parent.mkdir(parents=True)
    point.write_text('{"rig": "hilt-f0", "phones": {"ph1": {"model": "440HD", '
                     '"version": "2.2.8.61"}}}')
    assert restore_point_error(tmp_path / "reports", "hilt-f0") is None
