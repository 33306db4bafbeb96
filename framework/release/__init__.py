"""Certify a firmware release: read the images, install them on the rig's phones, restore."""

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
