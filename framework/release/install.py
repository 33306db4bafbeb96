"""Install a firmware release on every phone of a run, prove it, and quarantine the rest.

Per phone, in parallel (one thread per lane), through the phone's own provisioning path
(Admin Manual 10.2: the phone fetches the firmware URL from DHCP, checks the image
header, downloads and installs an image for its model at another version, and reboots):

1. serve the image for its model at ``/release/<sha256-prefix>/<file>`` (TFTP by default);
2. hand the phone the DHCP option it reads URLs from (``lane.url_option``; 160 and 224
   while the lab has not served it one)
   with ``tftp://<lab ip>/release/.../<file>``;
3. power-cycle it through its PDU outlet (the driver waits for its DISCOVER and prompt);
4. wait on the request log for the firmware transfer (an event) and check it carried the
   whole image; wait for the reboot that follows (a DHCP DISCOVER after the transfer);
5. read ``/etc/release`` back over the console: the version must be the release's.

A phone that fails any step is *broken* for the run (``lane.broken``, the record's phone
entry ``state: quarantined``, ``broken_reason``) and its cases are broken, not failed; the
others go on. The record's ``run.release`` names the images (file, model, version,
SHA-256) and ``phones[].firmware_before`` / ``firmware`` the versions before and after.

:func:`prepare` is the integration point for ``hil run --firmware/--restore`` and the
pytest plugin: a step of the run, called right after ``LabSession.start()`` and before
any case is scheduled (outside any test's timeout). Offering one image to one phone is
framework.release.offer; the restore points ``--restore`` reads are framework.release.restore.
Each case this records is a :class:`framework.records.CaseResult`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework.errors import RigFault
from framework.records import EvidenceItem, ObservedRequest
from framework.release.behaviour import (
    INSTALLS_RELEASE,
    REJECTS_CORRUPTED,
    REJECTS_OTHER_MODEL,
    RESTORES_PREVIOUS,
    SKIPS_CURRENT,
    UpgradeCase,
    case_entry,
    judge_refusal,
)
from framework.release.images import FirmwareImage, Release, ReleaseError, load_release
from framework.release.offer import (
    ImageOffer,
    corrupted,
    judge_install,
    offer_image,
    release_path,
)
from framework.release.restore import (
    keep_images,
    load_restore_point,
    restore_point_file,
    save_restore_point,
    stored_images,
)
from framework.resolution import ResolutionInputError, get_profile, profile_for_version
from framework.runner.cycle import phone_matcher

if TYPE_CHECKING:
    from framework.runner.lane import Lane
    from framework.runner.session import LabSession

log = logging.getLogger(__name__)

#: How long after a whole image went out a phone that must refuse it gets to show a reboot
#: anyway, in multiples of the run's request timeout (4 s sim, 30 s real bench).
REFUSAL_WINDOW_FACTOR = 2.0


@dataclass(frozen=True)
class InstallResult:
    """One phone's install: ``installed``, ``already`` (it ran the release) or ``broken``."""

    phone: str
    model: str
    outcome: str
    reason: str
    version_before: str | None
    version_after: str | None
    image: dict[str, Any] | None = None
    offer: ImageOffer | None = None

    @property
    def ok(self) -> bool:
        return self.outcome in ("installed", "already")

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "offer"}
        out["offer"] = self.offer.to_dict() if self.offer else None
        return out


# --- one phone -----------------------------------------------------------------------------


def _evidence(session: LabSession, lane: Lane, since: float, name: str,
              summary_doc: dict[str, Any]) -> list[EvidenceItem]:
    """The run's evidence bundle of an install step or upgrade case, under
    ``evidence/<phone>/<name>/``: the summary, this phone's requests, its DHCP transcript
    and console excerpt since ``since`` (framework.runner.evidence, as the matrix's)."""
    text = json.dumps(summary_doc, indent=1, sort_keys=True)
    return session.evidence.bundle(lane.spec, lane.link, name, since=since,
                                   summary=("summary.json", "summary", text))


def _observed(session: LabSession, lane: Lane, since: float) -> list[ObservedRequest]:
    """The phone's firmware-path requests since ``since``, as the record lists them."""
    mine = phone_matcher(lane.spec)
    return [ObservedRequest(time=r.time, protocol=r.protocol, url=r.url, host=r.host,
                            outcome=str(r.outcome), detail=f"{r.bytes_sent} bytes sent")
            for r in session.services.log.records(since=since)
            if mine(r) and r.url and r.protocol in ("tftp", "http", "https", "ftp")]


def _add_case(session: LabSession, lane: Lane, case: UpgradeCase, release_version: str,
              offer: ImageOffer | None, verdict: str, reason: str, start: float) -> None:
    """Record an upgrade case (a :class:`CaseResult`) with its evidence, unless the run
    (resumed) judged it before."""
    record = session.record
    spec = lane.spec
    if record is None or any(c.key == (case.id, spec.name) for c in record.cases):
        return
    end = time.time()
    observed = _observed(session, lane, start)
    evidence: list[EvidenceItem] = []
    error: str | None = None
    try:
        evidence = _evidence(session, lane, start, case.id, {
            "case": case.id, "verdict": verdict, "reason": reason,
            "offer": offer.to_dict() if offer else None})
    except OSError as exc:
        error = str(exc)
    entry = case_entry(case, phone=spec.name, model=spec.model, mac=spec.mac,
                       release_version=release_version, url_option=lane.url_option or 160,
                       offer=offer, verdict=verdict, reason=reason, start=start, end=end,
                       observed=observed, evidence=evidence,
                       profile=lane.profile.name if lane.profile else None)
    record.add_case(entry if error is None else entry.amended(evidence_error=error))


def refusal_case(session: LabSession, lane: Lane, case: UpgradeCase, data: bytes, path: str,
                 release_version: str, *, protocol: str = "tftp") -> tuple[str, str]:
    """Offer an image the phone must not install; record the case; quarantine the lane
    when the phone could not be judged or took the image."""
    start = time.time()
    offer: ImageOffer | None = None
    try:
        offer = offer_image(session, lane, data, path, protocol=protocol,
                            reboot_timeout_s=REFUSAL_WINDOW_FACTOR * session.request_timeout_s)
        verdict, reason = judge_refusal(case, offer)
    except RigFault as exc:
        verdict, reason = "broken", f"offering {path}: {exc}"
    finally:
        with contextlib.suppress(Exception):
            session.services.content.remove(path)
    if offer is not None and offer.version_after != offer.version_before:
        lane.firmware = offer.version_after
    if verdict == "broken" or (verdict == "failed" and offer is not None and
                               (offer.rebooted or offer.version_after != offer.version_before)):
        lane.broken = f"{case.id}: {reason}"
        if session.record is not None:
            session.record.update_phone(lane.spec.name, state="quarantined",
                                        broken_reason=lane.broken)
    _add_case(session, lane, case, release_version, offer, verdict, reason, start)
    return verdict, reason


def install_on_lane(session: LabSession, lane: Lane, image: FirmwareImage | None, *,
                    protocol: str = "tftp", behaviour: bool = False,
                    other: FirmwareImage | None = None,
                    case: UpgradeCase = INSTALLS_RELEASE) -> InstallResult:
    """Bring one lane's phone to ``image``; on failure the lane is quarantined.

    With ``behaviour``, the upgrade-behaviour cases run around the install (another
    model's image ``other`` and a corrupted copy before it, the same image again after it)
    and go into the record (framework.release.behaviour).
    """
    spec = lane.spec
    before = lane.firmware
    started = time.time()
    offer: ImageOffer | None = None
    if behaviour and image is not None and not lane.broken and before != image.version:
        prefix = f"/release/{image.sha256[:12]}"
        if other is not None:
            refusal_case(session, lane, REJECTS_OTHER_MODEL, other.data(),
                         f"{prefix}/other-model/{other.file}", image.version, protocol=protocol)
        if not lane.broken:
            refusal_case(session, lane, REJECTS_CORRUPTED, corrupted(image.data()),
                         f"{prefix}/corrupted/{image.file}", image.version, protocol=protocol)
    if lane.broken:
        result = InstallResult(spec.name, spec.model, "broken",
                               f"quarantined before the install: {lane.broken}", before, None)
    elif image is None:
        result = InstallResult(spec.name, spec.model, "broken",
                               f"the release has no image for model {spec.model}", before, None)
    elif before == image.version:
        result = InstallResult(spec.name, spec.model, "already",
                               f"already runs {image.version}", before, before, image.to_dict())
    else:
        try:
            offer = offer_image(session, lane, image.data(), release_path(image),
                                protocol=protocol)
            reason = judge_install(offer, image)
        except (RigFault, ReleaseError) as exc:
            reason = f"installing {image.file}: {exc}"
        after = offer.version_after if offer else None
        result = InstallResult(spec.name, spec.model, "broken" if reason else "installed",
                               reason or f"{before} -> {image.version}", before, after,
                               image.to_dict(), offer)
    _apply(session, lane, result)
    if result.outcome != "already" or offer is not None:
        with contextlib.suppress(OSError):
            evidence = _evidence(session, lane, started, "release-install", result.to_dict())
            if session.record is not None:
                session.record.update_phone(spec.name, release_evidence=evidence)
    if image is not None and (offer is not None or behaviour):
        verdict = {"installed": "passed", "already": "passed"}.get(result.outcome, "broken")
        _add_case(session, lane, case, image.version, offer, verdict, result.reason, started)
    if behaviour and image is not None and result.ok and not lane.broken:
        refusal_case(session, lane, SKIPS_CURRENT, image.data(),
                     f"/release/{image.sha256[:12]}/same-version/{image.file}", image.version,
                     protocol=protocol)
    return result


def _apply(session: LabSession, lane: Lane, result: InstallResult) -> None:
    """The lane and the record after an install: new version and profile, or quarantine."""
    record = session.record
    fields: dict[str, Any] = {"firmware_before": result.version_before,
                              "release_install": result.to_dict()}
    if result.ok and result.version_after:
        lane.firmware = result.version_after
        try:
            lane.profile = (get_profile(session.options.profile) if session.options.profile
                            else profile_for_version(result.version_after))
        except ResolutionInputError as exc:
            lane.broken = f"release {result.version_after}: {exc}"
        fields.update(firmware=result.version_after, expected_firmware=result.version_after,
                      profile=lane.profile.name if lane.profile else None)
    if not result.ok and not lane.broken:
        lane.broken = f"release not installed: {result.reason}"
    if lane.broken:
        fields.update(state="quarantined", broken_reason=lane.broken)
    if record is not None:
        record.update_phone(lane.spec.name, **fields)


# --- every phone -----------------------------------------------------------------------------


def install_release(session: LabSession, release: Release, *,
                    choose: Callable[[Lane], FirmwareImage | None] | None = None,
                    only: Collection[str] | None = None, behaviour: bool = False,
                    case: UpgradeCase = INSTALLS_RELEASE,
                    protocol: str = "tftp") -> dict[str, InstallResult]:
    """Install ``release`` on every lane of ``session`` in parallel; record what happened.

    ``choose(lane)`` picks a lane's image (default: the release's image for its model);
    ``only`` limits the install to those phones (the others are left as they are);
    ``behaviour`` adds the upgrade-behaviour cases (framework.release.behaviour).
    """
    from framework.phone import model_matches

    def other_model(lane: Lane) -> FirmwareImage | None:
        return next((i for i in release.images if not model_matches(lane.spec.model, i.model)),
                    None)

    pick = choose or (lambda lane: release.for_model(lane.spec.model))
    results: dict[str, InstallResult] = {}
    lock = threading.Lock()

    def one(lane: Lane) -> None:
        try:
            result = install_on_lane(session, lane, pick(lane), protocol=protocol,
                                     behaviour=behaviour, other=other_model(lane), case=case)
        except Exception as exc:  # a framework bug must not hang the others or pass a phone
            log.exception("install on %s", lane.spec.name)
            result = InstallResult(lane.spec.name, lane.spec.model, "broken",
                                   f"framework error during install: {exc!r}", lane.firmware,
                                   None)
            _apply(session, lane, result)
        with lock:
            results[lane.spec.name] = result

    threads = [threading.Thread(target=one, args=(lane,), name=f"install-{name}", daemon=True)
               for name, lane in session.lanes.items() if only is None or name in only]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for image in release.images:
        with contextlib.suppress(Exception):
            session.services.content.remove(release_path(image))
    if session.record is not None:
        session.record.update_run(release={
            **release.to_dict(),
            "installed": {n: {"outcome": r.outcome, "before": r.version_before,
                              "after": r.version_after, "reason": r.reason}
                          for n, r in sorted(results.items())}})
    return results


# --- the integration point -------------------------------------------------------------------


def prepare(session: LabSession, firmware_paths: Sequence[Path], restore: bool = False,
            *, protocol: str = "tftp", behaviour: bool = True) -> dict[str, InstallResult]:
    """Before the matrix: install the release in ``firmware_paths`` on every phone, or with
    ``restore`` put back what each phone ran before the last install on this rig (its
    image from ``firmware_paths`` or the lab's image store). ``behaviour`` (installs only)
    runs the upgrade-behaviour cases around each install. Raises ReleaseError for a
    release that cannot be used (before any phone is touched).
    """
    reports = session.options.reports_dir
    if not restore:
        release = load_release(list(firmware_paths))
        keep_images(reports, release)
        results = install_release(session, release, protocol=protocol, behaviour=behaviour)
        save_restore_point(reports, session.rig.name, session.run_id, results)
        return results
    point = load_restore_point(restore_point_file(reports, session.rig.name), session.rig.name)
    given = load_release(list(firmware_paths), one_per_model=False).images \
        if firmware_paths else ()
    pool = Release(tuple(given) + tuple(stored_images(reports)))

    names = [n for n, lane in session.lanes.items()
             if n in point and lane.firmware != point[n]["version"]]

    def choose(lane: Lane) -> FirmwareImage | None:
        return pool.for_model(lane.spec.model, point[lane.spec.name]["version"])

    missing = [f"{n} ({point[n]['model']} {point[n]['version']})" for n in names
               if choose(session.lanes[n]) is None]
    if missing:
        raise ReleaseError(f"--restore: no image for {', '.join(missing)}; give it with "
                           f"--firmware")
    used: list[FirmwareImage] = []
    for n in names:
        image = choose(session.lanes[n])
        if image is not None and image not in used:
            used.append(image)
    results = install_release(session, Release(tuple(used)), choose=choose, only=names,
                              case=RESTORES_PREVIOUS, protocol=protocol)
    for name, lane in session.lanes.items():  # already back where it was: nothing to do
        if name in point and name not in names:
            results[name] = InstallResult(name, lane.spec.model, "already",
                                          f"already runs {lane.firmware}", lane.firmware,
                                          lane.firmware)
            _apply(session, lane, results[name])
    if session.record is not None:
        session.record.update_run(restore=True)
    return results
