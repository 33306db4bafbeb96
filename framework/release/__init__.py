"""Certify a firmware release: read the images, install them on the rig's phones, restore.

Owns the release's images and their readers (``images``), the certification behaviours
(``behaviour``) and the install on the rig's phones (``install``). Imports (layer 3 of
pyproject.toml's contracts): framework.runner and everything below it; never labgrid,
explore or the entry points (framework.cli, framework.run, the pytest plugin).
"""

from framework.release.images import (
    FirmwareImage,
    ImageFormatError,
    ImageInfo,
    ImageReader,
    Release,
    ReleaseError,
    SimImageReader,
    load_release,
    read_image,
    register_reader,
)

__all__ = ["FirmwareImage", "ImageFormatError", "ImageInfo", "ImageReader", "Release",
           "ReleaseError", "SimImageReader", "load_release", "read_image", "register_reader"]
