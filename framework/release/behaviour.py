"""Upgrade behaviour as cases of the certification: what the phone does with images offered.

Admin Manual 10.2 (and docs/CONTRACTS.md, "Firmware image header"): the phone fetches the
firmware URL, reads the image header, and downloads and installs the image only when the
model is its own and the version differs. Each sentence becomes a case with a verdict in
the record (group ``upgrade``), next to the matrix rows, so ``hil report diff`` between two
releases shows an upgrade regression like any other row:

- ``upgrade/rejects-other-model``: an image for another model is not installed;
- ``upgrade/rejects-corrupted``: an image whose payload does not match its header is not
  installed;
- ``upgrade/installs-release`` (``upgrade/restores-previous`` with ``--restore``): the
  release's image is downloaded whole, the phone reboots and reports its version;
- ``upgrade/skips-current-version``: an image of the version it runs is not downloaded
  whole (the header at most) and not installed.

Verdicts: *passed*/*failed* on what the phone did; *broken* when it could not be judged
(never requested the URL, console or power fault). A phone that takes the release
incorrectly is quarantined by the install (framework.release.install).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from framework.records import CaseResult, EvidenceItem, ObservedRequest

if TYPE_CHECKING:
    from framework.release.offer import ImageOffer

MANUAL = ("Admin Manual 10.2: the phone checks the image header and installs an image for "
          "its model only when the version differs")


@dataclass(frozen=True)
class UpgradeCase:
    id: str
    title: str
    manual: str = MANUAL


REJECTS_OTHER_MODEL = UpgradeCase("upgrade/rejects-other-model",
                                  "an image for another model is not installed")
REJECTS_CORRUPTED = UpgradeCase("upgrade/rejects-corrupted",
                                "an image whose payload does not match its header is not "
                                "installed")
INSTALLS_RELEASE = UpgradeCase("upgrade/installs-release",
                               "the release's image is downloaded, installed, and reported "
                               "after the reboot")
RESTORES_PREVIOUS = UpgradeCase("upgrade/restores-previous",
                                "the previous release is put back and reported after the "
                                "reboot")
SKIPS_CURRENT = UpgradeCase("upgrade/skips-current-version",
                            "an image of the running version is not downloaded whole nor "
                            "installed")
UPGRADE_CASES = (REJECTS_OTHER_MODEL, REJECTS_CORRUPTED, INSTALLS_RELEASE, SKIPS_CURRENT,
                 RESTORES_PREVIOUS)


def judge_refusal(case: UpgradeCase, offer: ImageOffer) -> tuple[str, str]:
    """Verdict and reason for an image the phone must not install."""
    if not offer.requested:
        return "broken", f"the phone never requested {offer.url}: nothing to judge"
    seen = (f"{offer.bytes_sent} of {offer.image_bytes} bytes sent ({offer.outcome})"
            + (", then a reboot" if offer.rebooted else ", no reboot"))
    if offer.version_after != offer.version_before:
        return "failed", (f"installed it: reported {offer.version_before}, now "
                          f"{offer.version_after}; {seen}")
    if offer.rebooted:
        return "failed", f"rebooted after the download although it kept its version; {seen}"
    if case is SKIPS_CURRENT and offer.whole_image:
        return "failed", f"downloaded the whole image of the version it runs; {seen}"
    return "passed", f"kept {offer.version_after}; {seen}"


def case_entry(case: UpgradeCase, *, phone: str, model: str, mac: str, release_version: str,
               url_option: int, offer: ImageOffer | None, verdict: str, reason: str,
               start: float, end: float,
               observed: Sequence[ObservedRequest | Mapping[str, Any]],
               evidence: Sequence[EvidenceItem | Mapping[str, Any]],
               profile: str | None) -> CaseResult:
    """A case of the record like the matrix's, the ``running`` version and the ``offer``
    added (``expected`` is None: the manual's sentence is the expectation)."""
    return CaseResult.from_json({
        "id": case.id, "group": "upgrade", "title": case.title, "manual": case.manual,
        "phone": phone, "model": model, "mac": mac, "firmware": release_version,
        "running": offer.version_before if offer else None, "profile": profile,
        "url_option": url_option,
        "options": {str(url_option): offer.url} if offer else {},
        "expected": None, "observed": observed, "verdict": verdict, "reason": reason,
        "start": start, "end": end, "evidence": evidence,
        "offer": offer.to_dict() if offer else None,
    }, where=f"upgrade case {case.id} on {phone}")
