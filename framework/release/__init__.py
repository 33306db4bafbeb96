"""Certify a firmware release: read the images, install them on the rig's phones, restore.

Owns the release's images and their readers (``images``), the certification behaviours
(``behaviour``) and the install on the rig's phones (``install``). Imports (layer 3 of
pyproject.toml's contracts): framework.runner and everything below it; never labgrid,
explore or the entry points (framework.cli, framework.run, the pytest plugin).
"""

from framework.release.container import ContainerImageReader
from framework.release.images import (
    FirmwareImage,
    ImageFormatError,
    ImageInfo,
    ImageReader,
    Release,
    ReleaseError,
    load_release,
    read_image,
    register_reader,
)

register_reader(ContainerImageReader())

__all__ = [
    "ContainerImageReader",
    "FirmwareImage",
    "ImageFormatError",
    "ImageInfo",
    "ImageReader",
    "Release",
    "ReleaseError",
    "load_release",
    "read_image",
    "register_reader",
]
