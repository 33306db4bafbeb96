"""Offer one image to one phone through its own provisioning path, and see what it did.

Admin Manual 10.2: the phone fetches the firmware URL it gets by DHCP, checks the image
header, downloads and installs an image for its model at another version, and reboots.
:func:`offer_image` serves the image, hands the phone the URL, power-cycles it and
watches the wire (the transfer in the request log, the DISCOVER of a reboot) and the
console (the version it reports after): an :class:`ImageOffer`. :func:`judge_install`
says whether an offer installed the image; framework.release.behaviour judges the offers
a phone must refuse. Both the install and the upgrade cases (framework.release.install)
are built on this.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from framework.imgcontainer import ContainerError, read_container
from framework.release.images import FirmwareImage
from framework.runner.cycle import phone_matcher
from framework.runner.settings import SETTINGS_URL_OPTIONS

if TYPE_CHECKING:
    from framework.runner.lane import Lane
    from framework.runner.session import LabSession


@dataclass(frozen=True)
class ImageOffer:
    """What a phone did with an image it was offered: the transfer as the server saw it,
    whether it rebooted afterwards, and the version it reports after."""

    url: str
    requested: bool
    outcome: str | None          # the transfer's outcome in the request log
    bytes_sent: int              # bytes the server sent for the image
    image_bytes: int
    rebooted: bool               # a DHCP DISCOVER after the transfer ended
    version_before: str | None
    version_after: str | None
    started: float
    finished: float

    @property
    def whole_image(self) -> bool:
        return self.outcome == "served" and self.bytes_sent >= self.image_bytes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def release_path(image: FirmwareImage) -> str:
    """Where the lab serves ``image``: unique per content, so two releases never clash."""
    return f"/release/{image.sha256[:12]}/{image.file}"


def corrupted(data: bytes) -> bytes:
    """The image with the last data byte of its largest section flipped (same headers,
    that section's checksum no longer matching); the last byte of a file that is no
    container."""
    try:
        section = max(read_container(data, verify=False).sections, key=lambda s: s.length)
        at = section.offset + section.length - 1 if section.length else len(data) - 1
    except (ContainerError, ValueError):
        at = len(data) - 1
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:] if data else data


def offer_image(session: LabSession, lane: Lane, data: bytes, path: str, *,
                protocol: str = "tftp", timeout_s: float | None = None,
                reboot_timeout_s: float | None = None) -> ImageOffer:
    """Serve ``data`` at ``path``, point the phone at it by DHCP, power-cycle it and watch
    what it does: the transfer (request log), the reboot (DISCOVER) and the version it
    reports over the console afterwards. Raises RigFault when the phone cannot be driven.

    ``timeout_s`` bounds the wait for the transfer after the boot, ``reboot_timeout_s`` the
    wait for the DISCOVER of the reboot after a whole image went out (both default to the
    run's boot timeout).
    """
    assert lane.link is not None
    spec = lane.spec
    timeout = timeout_s if timeout_s is not None else session.boot_timeout_s
    reboot_timeout = reboot_timeout_s if reboot_timeout_s is not None else timeout
    url = f"{protocol}://{session.lab_ip}{path}"
    session.services.content.serve(path, data)
    # the option the phone reads URLs from; unknown until the lab served it one (the lab
    # cannot read settings back): then both the factory 160 and the matrix's 224
    codes = (lane.url_option,) if lane.url_option is not None else SETTINGS_URL_OPTIONS
    session.dhcp.set_options(spec.mac_colon, {code: url.encode() for code in codes})
    session.services.log.forget_names(str(spec.address))
    before = lane.firmware
    started = time.time()
    mine = phone_matcher(spec)
    try:
        lane.link.trigger("power-cycle")  # returns once the phone booted (DISCOVER + prompt)

        def transfer(r: Any) -> bool:
            return bool(mine(r) and r.protocol == protocol
                        and r.path.endswith(path.lstrip("/")))

        try:
            rec = session.services.log.wait_for(
                transfer, timeout=timeout, since=started,
                what=f"{spec.name} fetching firmware {url}")
        except TimeoutError:
            rec = None
        rebooted = False
        if rec is not None:
            try:
                session.dhcp.wait_for(spec.mac_colon, "DISCOVER", since=rec.time,
                                      timeout=reboot_timeout if rec.outcome == "served" else 0.1)
                rebooted = True
            except TimeoutError:
                rebooted = False
            if rebooted:  # the new firmware's boot: its lease, then its console
                with contextlib.suppress(TimeoutError):
                    session.dhcp.wait_for(spec.mac_colon, "ACK", since=rec.time,
                                          timeout=timeout)
        after = lane.link.identity().firmware
    finally:
        with contextlib.suppress(Exception):
            session.dhcp.set_options(spec.mac_colon, {})
    return ImageOffer(url=url, requested=rec is not None,
                      outcome=None if rec is None else str(rec.outcome),
                      bytes_sent=0 if rec is None else int(rec.bytes_sent),
                      image_bytes=len(data), rebooted=rebooted, version_before=before,
                      version_after=after, started=started, finished=time.time())


def judge_install(offer: ImageOffer, image: FirmwareImage) -> str | None:
    """None when the phone took ``image``; else the *broken* reason, in the user's words."""
    if not offer.requested:
        return f"the phone never requested the firmware {offer.url}"
    if not offer.whole_image:
        return (f"download of {image.file} cut: {offer.bytes_sent} of {offer.image_bytes} "
                f"bytes sent ({offer.outcome})")
    if offer.version_after != image.version:
        what = "image rejected" if not offer.rebooted else "rebooted into another version"
        return (f"version unchanged: reports {offer.version_after} after downloading "
                f"{image.file} ({image.model} {image.version}): {what}")
    if not offer.rebooted:
        return f"reports {image.version} but no reboot was seen after the download"
    return None
