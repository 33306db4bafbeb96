"""Verdicts: what the phone requested on the wire against what the core expects.

Pure logic. *passed*: every expected URL requested, in the manual's order, nothing else;
*failed*: the phone requested something else, more or less (the reason says which URL
and how); *broken*: the rig failed, decided before this module is reached; *observed*:
the profile does not promise this outcome, so the comparison is recorded, not judged.
Each assertion keeps its ground (framework.resolution.grounds): only those whose ground
kind the profile judges can fail a case; URLs are equivalent by RFC 3986 6.2.2 unless the
profile compares them byte for byte (switch ``url_compare``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from framework.resolution import (
    Assertion,
    ExpectedProvisioning,
    Interpretation,
    Promise,
    assertions,
    forgiven,
    urls_equivalent,
)

#: Names a 400HD may look up when no provisioning option yields a URL (PROVISIONING.md:
#: the HTTPS redirect server); an attempt is recorded, and allowed only in that case.
REDIRECT_NAMES = ("redirect.audiocodes.com",)


class Verdict(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    BROKEN = "broken"
    OBSERVED = "observed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Observed:
    """One request seen on the wire, reduced to what a verdict needs."""

    time: float
    protocol: str
    url: str | None  # None for DNS
    host: str | None
    outcome: str = ""
    detail: str = ""
    #: Bytes the server sent for the request (the timeline of the report shows it).
    size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"time": self.time, "protocol": self.protocol, "url": self.url,
                               "host": self.host, "outcome": self.outcome,
                               "detail": self.detail}
        if self.size is not None:
            out["bytes"] = self.size
        return out


@dataclass(frozen=True)
class Judgement:
    """A case's verdict, why, and each of its assertions with its ground and outcome."""

    verdict: Verdict
    reason: str
    differences: tuple[str, ...] = field(default=())
    matches: bool = False
    #: Each assertion (grounds.Assertion.to_dict()) with ``holds`` and ``detail``.
    assertions: tuple[dict[str, Any], ...] = field(default=())
    #: Differences that URL equivalence forgave: notes, never failures.
    notes: tuple[str, ...] = field(default=())


def _host_of(url: str) -> str:
    rest = url.split("://", 1)[-1]
    authority = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if authority.startswith("["):
        return authority[1:authority.find("]")]
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


@dataclass(frozen=True)
class Difference:
    """One part of a requested URL that differs from the expected URL.

    ``part`` is the piece of the URL (protocol, host, port, slash, directory, blank, model,
    MAC, file name, extension, or the whole path); ``kind`` says how it differs without
    the values (``"model case"``, ``"MAC missing"``); ``phrase`` is the reason's words.
    """

    part: str
    kind: str
    phrase: str


#: kind -> (part, phrase template); most specific first, as :func:`difference_kind` reads
#: a phrase back by the first template it fits. No template holds "(" or ", ": callers
#: put the joined phrases in parentheses and split them on ", ".
_PHRASES: dict[str, tuple[str, str]] = {
    "protocol": ("protocol", "protocol {o} instead of {e}"),
    "host case": ("host", "host case differs"),
    "server": ("host", "server {o} instead of {e}"),
    "default port": ("port", "default port instead of {e}"),
    "port": ("port", "port {o} instead of {e}"),
    "doubled slash": ("slash", "doubled slash in the path"),
    "single slash": ("slash", "single slash instead of a doubled one"),
    "server root": ("directory", "file at the server root instead of {e}"),
    "directory case": ("directory", "directory case differs: {o} instead of {e}"),
    "directory": ("directory", "directory {o} instead of {e}"),
    "blank": ("blank", "blank after ';' kept in the file name"),
    "extra name": ("file name", "'{o}' kept after the file name"),
    "model case": ("model", "model case differs: {o} instead of {e}"),
    "model missing": ("model", "model missing from the file name"),
    "model added": ("model", "model {o} added to the file name"),
    "model": ("model", "model {o} instead of {e}"),
    "MAC case": ("MAC", "MAC case differs"),
    "MAC missing": ("MAC", "MAC missing from the file name"),
    "MAC added": ("MAC", "MAC {o} added to the file name"),
    "MAC": ("MAC", "MAC {o} instead of {e}"),
    "file name case": ("file name", "file name case differs: {o} instead of {e}"),
    "file name": ("file name", "file name {o} instead of {e}"),
    "extension missing": ("extension", "no extension instead of {e}"),
    "extension added": ("extension", "extension {o} added to the file name"),
    "extension": ("extension", "extension {o} instead of {e}"),
    "path": ("path", "path {o} instead of {e}"),
}
_KIND_PATTERNS = [(kind, re.compile(re.escape(template).replace(r"\{o\}", ".+")
                                    .replace(r"\{e\}", ".+")))
                  for kind, (_, template) in _PHRASES.items()]
#: A 400HD-family model name (405HD, 420HD, 440HD...), delimited.
_MODEL_NAME = re.compile(r"(?<![0-9A-Za-z])[0-9]{3}HD(?![0-9A-Za-z])", re.IGNORECASE)
#: Another MAC: twelve hex digits, delimited by non-hex characters.
_OTHER_MAC = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{12}(?![0-9A-Fa-f])")
_BLANKS = re.compile(r"^(?:[ \t]|%20|%09)+", re.IGNORECASE)
_SLOT = {"MAC": "\x01", "model": "\x02"}


def _diff(kind: str, o: str = "", e: str = "") -> Difference:
    part, template = _PHRASES[kind]
    return Difference(part, kind, template.format(o=o, e=e))


def difference_kind(phrase: str) -> str:
    """The kind of one phrase of :func:`describe_difference` (``"model case"``, ``"MAC
    missing"``, ``"extension"``...): what it is about, without the values."""
    return next((kind for kind, pattern in _KIND_PATTERNS if pattern.fullmatch(phrase)),
                phrase)


def _split_url(url: str) -> tuple[str, str, str | None, str]:
    """protocol, host, port (None if not given), path without its leading '/'."""
    proto, _, rest = url.partition("://")
    authority, _, path = rest.partition("/")
    hostport = authority.rsplit("@", 1)[-1]
    if hostport.startswith("["):
        host, _, tail = hostport.partition("]")
        host += "]"
        port = tail[1:] if tail.startswith(":") else None
    elif hostport.count(":") == 1:
        host, _, port_text = hostport.partition(":")
        port = port_text
    else:
        host, port = hostport, None
    return proto, host, port, path


def _directories(expected: list[str], observed: list[str]) -> list[Difference]:
    def show(segments: Sequence[str]) -> str:
        return "/" + "".join(f"{s}/" for s in segments)

    if expected == observed:
        return []
    if not observed:
        return [_diff("server root", e=show(expected))]
    if len(expected) != len(observed):
        return [_diff("directory", show(observed), show(expected))]
    return [_diff("directory case" if e.lower() == o.lower() else "directory", show([o]),
                  show([e])) for e, o in zip(expected, observed, strict=True) if e != o]


def _slots(stem: str, mac: str, model: str) -> tuple[str, dict[str, str]]:
    """The stem with the MAC and the model (any case) replaced by markers, and their text."""
    found = {}
    for key, value in (("MAC", mac), ("model", model)):
        i = stem.lower().find(value.lower()) if value else -1
        if i >= 0:
            found[key] = stem[i:i + len(value)]
            stem = stem[:i] + _SLOT[key] + stem[i + len(value):]
    return stem, found


def _rests(rest: str, gone: str) -> set[str]:
    """The rest of a stem without the markers of slots only one side has: each dropped
    alone, with the separator after it, or with the separator before it."""
    if not gone:
        return {rest}
    slot = f"[{gone}]"
    return {re.sub(pattern, "", rest) for pattern in (slot, slot + "[-_]?", "[-_]?" + slot)}


def _split_name(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    return (stem, "." + ext) if dot else (name, "")


def _file_name(expected: str, observed: str, mac: str, model: str) -> list[Difference] | None:
    """How the observed file name differs, or None if it is not recognisably the expected."""
    out = []
    blanks = _BLANKS.match(observed)
    if blanks and not _BLANKS.match(expected):
        out.append(_diff("blank"))
        observed = observed[blanks.end():]
    e_stem, e_ext = _split_name(expected)
    o_stem, o_ext = _split_name(observed)
    if not model and (guess := _MODEL_NAME.search(e_stem)):
        model = guess.group()
    e_rest, e_found = _slots(e_stem, mac, model)
    o_rest, o_found = _slots(o_stem, mac, model)
    other: dict[str, str] = {}
    for key, pattern in (("MAC", _OTHER_MAC), ("model", _MODEL_NAME)):
        if key in e_found and key not in o_found and (m := pattern.search(o_rest)):
            other[key] = m.group()
            o_rest = o_rest[:m.start()] + _SLOT[key] + o_rest[m.end():]
    both = set(e_found) & (set(o_found) | set(other))
    gone = "".join(marker for key, marker in _SLOT.items() if key not in both)
    e_rests, o_rests = _rests(e_rest, gone), _rests(o_rest, gone)
    same = bool(e_rests & o_rests)
    same_case = same or bool({r.lower() for r in e_rests} & {r.lower() for r in o_rests})
    added = set(o_found) - set(e_found)
    if not (set(e_found) & set(o_found)) and (added or not same_case):
        return None  # another file: nothing specific to say about its parts
    for key in ("model", "MAC"):
        e_text, o_text = e_found.get(key), o_found.get(key)
        if e_text is not None and o_text is not None:
            if e_text != o_text:
                out.append(_diff(f"{key} case", o_text, e_text))
        elif e_text is not None and key in other:
            out.append(_diff(key, other[key], e_text))
        elif e_text is not None:
            out.append(_diff(f"{key} missing"))
        elif o_text is not None:
            out.append(_diff(f"{key} added", o_text))
    if not same:
        out.append(_diff("file name case" if same_case else "file name", observed, expected))
    if e_ext != o_ext:
        out.append(_diff("extension missing", e=e_ext) if not o_ext else
                   _diff("extension added", o_ext) if not e_ext else
                   _diff("extension", o_ext, e_ext))
    return out


def _path(expected: str, observed: str, mac: str, model: str) -> list[Difference]:
    if expected == observed:
        return []
    if observed.startswith(expected + ";") and not expected.endswith("/"):
        return [_diff("extra name", observed[len(expected):])]  # a further ';' name kept
    *e_dirs, e_name = expected.split("/")
    *o_dirs, o_name = observed.split("/")
    out = []
    e_empty, o_empty = e_dirs.count(""), o_dirs.count("")
    if o_empty != e_empty:
        out.append(_diff("doubled slash" if o_empty > e_empty else "single slash"))
    name = _file_name(e_name, o_name, mac, model)
    if name is None:
        return [_diff("path", f"/{observed}", f"/{expected}")]
    out += _directories([d for d in e_dirs if d], [d for d in o_dirs if d]) + name
    return out or [_diff("path", f"/{observed}", f"/{expected}")]


def url_differences(expected: str, observed: str, *, mac: str,
                    model: str = "") -> list[Difference]:
    """Each part of ``observed`` that differs from ``expected``, in URL order.

    The protocol is compared without case (RFC 3986), everything else exactly. The file
    name is split into the model, the MAC, the rest of its stem and its extension;
    ``model`` is the phone's model (when empty, a 400HD model name in the expected file
    name is taken). A file name that shares no part with the expected one is another file:
    the whole path is named (``path /x instead of /y``).
    """
    e_proto, e_host, e_port, e_path = _split_url(expected)
    o_proto, o_host, o_port, o_path = _split_url(observed)
    out = []
    if e_proto.lower() != o_proto.lower():
        out.append(_diff("protocol", o_proto, e_proto))
    if e_host != o_host:
        out.append(_diff("host case") if e_host.lower() == o_host.lower()
                   else _diff("server", o_host, e_host))
    if e_port != o_port:
        out.append(_diff("default port", e=e_port or "") if o_port is None
                   else _diff("port", o_port, e_port or "the default"))
    return out + _path(e_path, o_path, mac, model)


def describe_difference(expected: str, observed: str, mac: str, model: str = "") -> str:
    """Say how two URLs differ, in the terms a firmware engineer uses: each differing part
    of :func:`url_differences` as a short phrase, joined by ", "."""
    return ", ".join(d.phrase for d in url_differences(expected, observed, mac=mac,
                                                       model=model)) or "same URL"


def _mac_text(url: str, mac: str) -> str | None:
    """The MAC as ``url``'s file name spells it (any case), or None."""
    name = url.rsplit("/", 1)[-1]
    i = name.lower().find(mac.lower()) if mac else -1
    return name[i:i + len(mac)] if i >= 0 else None


def _forgiven_kinds(interp: Interpretation) -> set[str]:
    """Difference kinds that URL equivalence forgives (not named in a failure's reason)."""
    return {"host case", "default port"} if interp.url_compare == "rfc3986" else set()


def judge(expected: ExpectedProvisioning, files: Sequence[Observed], dns: Sequence[Observed],
          *, mac: str, interp: Interpretation, model: str = "") -> Judgement:
    """Compare the phone's file requests (and DNS look-ups) with the expectation.

    Each assertion of the case (grounds.assertions: the requests, the MAC's case, their
    order, nothing else) is checked and keeps its ground; a promised case fails when an
    assertion the profile judges (switch ``judged_grounds``) does not hold. URLs are
    compared per the switch ``url_compare``; a difference equivalence forgives is a note.
    ``model`` (the phone's model) lets a reason name a model spelled differently in a file
    name; without it, a 400HD model name in the expected file name is taken.
    """
    checks = assertions(expected, interp, mac)
    mac_apart = any(a.id == "mac-case" for a in checks)
    mac_case = interp.mac_compare == "exact" and not mac_apart
    failures: dict[str, list[str]] = {a.id: [] for a in checks}
    notes: list[str] = []
    wanted = list(expected.requests)
    seen = [o for o in files if o.url]

    def same(url: str, o: Observed) -> bool:
        return o.url is not None and urls_equivalent(url, o.url, interp=interp, mac=mac,
                                                     mac_case=mac_case)

    first_index: dict[str, int] = {}
    spare = [o for o in seen if not any(same(w.url, o) for w in wanted)]
    missing = []
    for want in wanted:
        idx = next((i for i, o in enumerate(seen) if same(want.url, o)), None)
        if idx is None:
            missing.append(want)
            continue
        first_index[want.purpose] = idx
        for url in dict.fromkeys(o.url for o in seen if o.url and same(want.url, o)):
            kept = forgiven(want.url, url, interp=interp, mac=mac, mac_case=mac_case,
                            mac_note=not mac_apart)
            if kept:
                notes.append(f"{want.purpose}: requested {url}, equivalent to the expected "
                             f"{want.url} ({', '.join(kept)}): a note, not a failure")
            if mac_apart and _mac_text(url, mac) != _mac_text(want.url, mac):
                failures["mac-case"].append(f"{want.purpose}: expected {want.url}, requested "
                                            f"{url} (MAC case differs)")
    forgiven_kinds = _forgiven_kinds(interp)
    for want in missing:
        is_fw = want.purpose == "firmware"
        guess = next((o for o in spare if o.url and o.url.lower().endswith(".img") == is_fw),
                     spare[0] if spare else None)
        if guess is not None and guess.url:
            spare.remove(guess)
            said = ", ".join(d.phrase for d in url_differences(want.url, guess.url, mac=mac,
                                                                model=model)
                             if d.kind not in forgiven_kinds) or "same URL"
            failures[f"request/{want.purpose}"].append(
                f"{want.purpose}: expected {want.url}, requested {guess.url} ({said})")
        else:
            failures[f"request/{want.purpose}"].append(
                f"{want.purpose}: expected {want.url}, not requested")
    for o in spare:
        failures["nothing-else"].append(f"unexpected request {o.url} ({o.protocol})")
    if "firmware" in first_index and "configuration" in first_index \
            and first_index["configuration"] < first_index["firmware"]:
        failures["order"].append("configuration requested before firmware (Admin Manual "
                                 "10.1: firmware first, then the configuration file)")
    hosts = {_host_of(w.url).lower() for w in wanted}
    for q in dns:
        name = (q.host or "").rstrip(".").lower()
        if not name or name in hosts:
            continue
        if not wanted and name in REDIRECT_NAMES:
            continue  # documented fallback when no option yields a URL
        failures["nothing-else"].append(f"unexpected DNS query for {q.host}")
    return _verdict(expected, interp, checks, failures, tuple(notes))


def _verdict(expected: ExpectedProvisioning, interp: Interpretation,
             checks: Sequence[Assertion], failures: dict[str, list[str]],
             notes: tuple[str, ...]) -> Judgement:
    """The verdict from each assertion's failures: judged ones decide, observed ones are
    said; every assertion is kept with its ground and outcome."""
    results = tuple({**a.to_dict(), "holds": not failures[a.id],
                     "detail": "; ".join(failures[a.id])} for a in checks)
    diffs = tuple(d for a in checks for d in failures[a.id])
    judged = [d for a in checks if a.judged for d in failures[a.id]]
    unjudged = [a for a in checks if not a.judged and failures[a.id]]
    agree = not diffs
    said = "; ".join(notes)
    if expected.promise is not Promise.PROMISED:
        what = "matches the core's expectation" if agree else "; ".join(diffs)
        why = "; ".join(expected.unpromised_by) or \
            f"{expected.promise.value}, rule {expected.rule}"
        return Judgement(Verdict.OBSERVED,
                         f"not promised by profile {expected.profile} ({why}): {what}"
                         + (f"; note: {said}" if said else ""), diffs, agree, results, notes)
    if not any(a.judged for a in checks):
        what = "matches the core's expectation" if agree else "; ".join(diffs)
        return Judgement(Verdict.OBSERVED,
                         f"no assertion of this case has a ground the profile judges "
                         f"(judged_grounds={interp.judged_grounds}): {what}",
                         diffs, agree, results, notes)
    if judged:
        return Judgement(Verdict.FAILED, "; ".join(judged), diffs, False, results, notes)
    n = len(expected.requests)
    reason = (f"requested the {n} expected URL{'s' if n != 1 else ''} in order, nothing else"
              if n else "requested nothing, as expected")
    if unjudged:
        reason += "; observed, not judged: " + "; ".join(
            f"{d} ({a.ground.kind} ground)" for a in unjudged for d in failures[a.id])
    if said:
        reason += f"; note: {said}"
    return Judgement(Verdict.PASSED, reason, diffs, agree, results, notes)
