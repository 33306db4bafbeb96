"""One explored input on one phone, judged against the resolution core.

A :class:`Trial` is what the lab saw when one phone was given one generated case: its
file requests and DNS look-ups. :func:`assess` asks the core what the phone should have
requested under a behaviour profile and compares, with the same :func:`judge` a matrix
run uses, so exploration and certification never disagree about what "agree" means.

*Disagreement* (decided here, documented in the README of this package): the phone's
file requests (and DNS look-ups) differ from the core's expectation, whatever the
promise. On a *promised* outcome that is a firmware failure against the manual; on an
*unspecified* or *pending* outcome the expectation is the core's guess, taken from a
named switch, so the disagreement is a finding about that switch, and :mod:`.infer`
says which switch value the phone behaves as.

The lab records TFTP and FTP URLs without a default port (``services/log.build_url``),
while the core keeps a port given in the option (switch ``port=keep``); both sides are
compared with default ports removed so an explicit ``:69`` is not mistaken for a finding.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from framework.records import CaseResult
from framework.resolution import (
    ExpectedProvisioning,
    PhoneIdentity,
    PhoneSettings,
    Profile,
    Promise,
    resolve,
)
from framework.runner.catalogue import LAB_DNS_NAME, Case
from framework.runner.verdict import Observed, difference_kind, judge

FILE_PROTOCOLS = ("tftp", "http", "https", "ftp")
_DEFAULT_PORT = re.compile(r"^(?P<p>tftp|http|https|ftp)://(?P<a>[^/]*?):(?P<port>69|80|443|21)"
                           r"(?=/|$)", re.IGNORECASE)
_PORTS = {"tftp": "69", "http": "80", "https": "443", "ftp": "21"}


def without_default_port(url: str) -> str:
    """``http://h:80/x`` -> ``http://h/x`` (only the protocol's own default port)."""
    m = _DEFAULT_PORT.match(url)
    if m and _PORTS[m.group("p").lower()] == m.group("port"):
        return url[:m.start("a")] + m.group("a") + url[m.end("port"):]
    return url


@dataclass(frozen=True)
class Trial:
    """What one phone did with one generated case (``broken``: the rig failed instead)."""

    case: Case
    phone: str
    model: str
    mac: str
    firmware: str
    files: tuple[Observed, ...] = ()
    dns: tuple[Observed, ...] = ()
    broken: str | None = None
    lab_ip: str = "192.0.2.1"
    #: Observations the runner gave this case that predate its own cycle (its trigger and
    #: DHCP ACK): another input's requests, kept only as evidence, never judged.
    excluded: tuple[Observed, ...] = ()

    @property
    def requested(self) -> list[str]:
        return [o.url for o in self.files if o.url]

    def options(self) -> dict[int, bytes]:
        return self.case.render(self.lab_ip, LAB_DNS_NAME)

    @classmethod
    def from_entry(cls, case: Case, entry: CaseResult, lab_ip: str) -> Trial:
        """From a :meth:`LabSession.run_case` result (its ``observed`` list).

        Only the case's own cycle counts: an observation before the case's first DHCP ACK
        (``ack_at``; else its trigger, ``start``) was made before the phone could know the
        case's options, so it belongs to an earlier input and goes to ``excluded``.
        """
        opened = entry.ack_at[0] if entry.ack_at else entry.start
        files: list[Observed] = []
        dns: list[Observed] = []
        excluded: list[Observed] = []
        for o in entry.observed:
            obs = Observed(o.time, o.protocol, o.url, o.host, o.outcome, o.detail)
            if obs.time < float(opened):
                excluded.append(obs)
            else:
                (dns if obs.protocol == "dns" else files).append(obs)
        broken = entry.reason if entry.verdict == "broken" else None
        return cls(case, entry.phone, entry.model, entry.mac, str(entry.firmware or "unknown"),
                   tuple(files), tuple(dns), broken, lab_ip, tuple(excluded))


@dataclass(frozen=True)
class Assessment:
    """A trial judged under one profile."""

    agree: bool
    promise: Promise
    rule: str
    differences: tuple[str, ...]
    expected: ExpectedProvisioning

    @property
    def kinds(self) -> frozenset[str]:
        return difference_kinds(self.differences)

    @property
    def promised(self) -> bool:
        return self.promise is Promise.PROMISED


@functools.lru_cache(maxsize=4096)
def _variant(profile: Profile, changes: tuple[tuple[str, Any], ...]) -> Profile:
    return profile.with_switches(**dict(changes))


def variant(profile: Profile, **changes: Any) -> Profile:
    """``profile.with_switches(...)``, memoised: switch validation is slow and inference
    asks for the same few variants thousands of times."""
    return _variant(profile, tuple(sorted(changes.items())))


def expectation(trial: Trial, profile: Profile) -> ExpectedProvisioning:
    expected = resolve(trial.options(), PhoneIdentity(trial.model, trial.mac), profile,
                       PhoneSettings(url_option=trial.case.url_option))
    return dataclasses.replace(
        expected,
        firmware_url=without_default_port(expected.firmware_url) if expected.firmware_url
        else None,
        config_url=without_default_port(expected.config_url) if expected.config_url else None)


def assess(trial: Trial, profile: Profile) -> Assessment:
    """Judge ``trial`` under ``profile`` (the matrix's :func:`judge`, default ports aside).

    URLs are compared byte for byte (``url_compare=byte-exact``) whatever the profile's
    verdicts use: exploration learns how the firmware spells a URL (``host_case``...), so
    a difference RFC 3986 equivalence would forgive is still one it must see.
    """
    expected = expectation(trial, profile)
    files = [dataclasses.replace(o, url=without_default_port(o.url)) if o.url else o
             for o in trial.files]
    interp = variant(profile, url_compare="byte-exact").interpretation
    j = judge(expected, files, trial.dns, mac=trial.mac, interp=interp)
    return Assessment(j.matches, expected.promise, expected.rule, j.differences, expected)


_SIDE = re.compile(r"^(?P<purpose>firmware|configuration): expected \S+, (?P<rest>.*)$")


def difference_kinds(differences: Iterable[str]) -> frozenset[str]:
    """The kinds of a judgement's differences, without URLs: what a finding is *about*.

    ``configuration: expected …, requested … (MAC case differs)`` -> ``configuration:MAC
    case`` (each phrase read back by :func:`framework.runner.verdict.difference_kind`); ``… not requested`` -> ``configuration:missing``; an unexpected request ->
    ``extra-request``; the 10.1 order -> ``order``; a stray DNS look-up -> ``extra-dns``.
    """
    out: set[str] = set()
    for diff in differences:
        m = _SIDE.match(diff)
        if m:
            rest = m.group("rest")
            if rest.endswith("not requested"):
                out.add(f"{m.group('purpose')}:missing")
                continue
            desc = rest[rest.rfind("(") + 1:].rstrip(")") if "(" in rest else rest
            for part in desc.split(", "):
                out.add(f"{m.group('purpose')}:{difference_kind(part)}")
        elif diff.startswith("unexpected request"):
            out.add("extra-request")
        elif diff.startswith("configuration requested before firmware"):
            out.add("order")
        elif diff.startswith("unexpected DNS query"):
            out.add("extra-dns")
        else:
            out.add(diff.split(":")[0])
    return frozenset(out)


def disagreements(trials: Sequence[Trial], profile: Profile) -> list[tuple[Trial, Assessment]]:
    out = []
    for t in trials:
        if t.broken is None:
            a = assess(t, profile)
            if not a.agree:
                out.append((t, a))
    return out
