"""Firmware behaviour profiles: what a manual release promises, as data.

Every unclear sentence of the manual ([?] in design/PROVISIONING.md) is a named switch
in :class:`Interpretation`, with a default we can defend; the README lists each switch,
its default and the sentence behind it. A profile is the set of switches plus which
rules the release's manual marks "[Support pending]".
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from framework.resolution.model import Promise, ResolutionInputError


@dataclass(frozen=True)
class Interpretation:
    """The named switches. Each field documents its default and why."""

    #: Case of ``<mac>`` in the default config name ``<mac>.cfg``. The manual writes
    #: ``<mac>`` with digit-only examples; field captures show upper case
    #: (``00908F9D8992.cfg``), so upper is expected.
    mac_case: Literal["upper", "lower"] = "upper"
    #: How an observed URL's MAC is compared with the expected one. ``exact`` reports a
    #: phone that changes the case; ``case-insensitive`` forgives it.
    mac_compare: Literal["exact", "case-insensitive"] = "exact"
    #: Case of the host in the expected URL. Table 10-2 turns ``Audiocodes.com`` into
    #: ``audiocodes.com``; host names are case-insensitive (RFC 4343).
    host_case: Literal["lower", "as-given"] = "lower"
    #: How observed hosts are compared when ``url_compare=byte-exact`` (under ``rfc3986``
    #: host case is always insignificant). ``exact`` catches a firmware that keeps the case
    #: the manual lower-cases; ``case-insensitive`` accepts it.
    host_compare: Literal["exact", "case-insensitive"] = "exact"
    #: How an observed URL is compared with the expected one. ``rfc3986``: equivalence by
    #: RFC 3986 6.2.2 (scheme and host case-insensitive, percent-encoding normalised) and
    #: 6.2.3 (a default port is no port); host names are case-insensitive (RFC 4343) and
    #: Table 10-2's capitals (``Tftp://``, ``Audiocodes.com``) are typography. A difference
    #: equivalence forgives is a note in the case, never a failure. ``byte-exact``: the
    #: URL as the core spells it, byte for byte (``host_compare`` may still forgive case).
    url_compare: Literal["rfc3986", "byte-exact"] = "rfc3986"
    #: Which ground kinds give verdicts (grounds.toml): the assertions of a promised case
    #: whose ground is of another kind are recorded as observed. Default: what a manual
    #: says and what field captures show are judged; our own conventions (``lab``) are not.
    judged_grounds: Literal["manual,field", "manual", "manual,field,lab"] = "manual,field"
    #: Protocol added to a server address given without one. Table 10-2: "When protocol
    #: is not specified, tftp is added as the default protocol."
    default_protocol: Literal["tftp", "ftp", "http", "https"] = "tftp"
    #: A URL option (160) value without ``<protocol>://``. Table 10-1 documents only forms
    #: with a protocol; we expect the firmware's shared parser to apply the 66 default.
    url_option_bare_host: Literal["default-protocol", "no-url"] = "default-protocol"
    #: A protocol other than tftp/ftp/http/https (Table 10-1 lists exactly these four):
    #: the source yields no URL and the next source is used.
    unknown_protocol: Literal["no-url"] = "no-url"
    #: A URL ending in ``/`` after a directory ([F] field configs): ``directory`` puts the
    #: default names inside it; ``server-root`` ignores the directory.
    trailing_slash: Literal["directory", "server-root"] = "directory"
    #: Where the configuration file lives when the firmware name has a sub-directory
    #: (``http://host/420HD/420HD.img;420HD.cfg``, [F]): ``firmware-directory`` (as the
    #: integrators who write such URLs expect) or ``server-root``.
    config_location: Literal["firmware-directory", "server-root"] = "firmware-directory"
    #: Option 67 holding one name without ``;``. Table 10-2 shows only ``abc.img;efg.cfg``.
    #: ``by-extension``: ``.cfg`` is the configuration, anything else the firmware.
    option67_single_name: Literal["by-extension", "firmware", "configuration"] = "by-extension"
    #: A URL option present but empty: ``fall-through`` to 66/67 and 43 (the precedence
    #: sentence ranks sources that give a URL) or ``stop`` (present option blocks the rest).
    empty_url_option: Literal["fall-through", "stop"] = "fall-through"
    #: Trailing NUL bytes (some DHCP servers NUL-terminate 66/67, LAB-NOTES): ``strip``
    #: them, or treat the value as ``malformed``. A NUL inside the value is always malformed.
    trailing_nul: Literal["strip", "malformed"] = "strip"
    #: White space around the value and around names. Table 10-1's example has a space
    #: after ``;`` that the result does not keep: ``strip``.
    whitespace: Literal["strip", "keep"] = "strip"
    #: Where ``<MODEL>`` / ``<MAC>`` placeholders (Table 10-1) are expanded. The firmware
    #: is expected to share one name expander: ``all-sources``.
    placeholders: Literal["all-sources", "url-option-only"] = "all-sources"
    #: A bracketed IPv6 literal host (``http://[2001:db8::1]``). The 400HD provisioning
    #: chapter never mentions IPv6: ``accept`` parses it, but no manual promises it.
    ipv6_literal: Literal["accept", "no-url"] = "accept"
    #: A port in the server address (``host:8080``) is kept in the URL as given.
    port: Literal["keep"] = "keep"
    #: More than two ``;``-separated names: ``ignore-extra`` uses the first two.
    extra_names: Literal["ignore-extra", "no-url"] = "ignore-extra"
    #: How Option 43 content is read (10.2.3; its example figure is lost): a plain URL
    #: string in Option 160 syntax, a vendor-encapsulated TLV whose sub-option carries that
    #: URL, or ``auto`` (a value that starts with ``<protocol>://`` is a string, else TLVs).
    #: Default ``auto``: both formats are read, so the one ``option43_promised`` does not
    #: promise still has an expectation, recorded as observed (issue 16 item 3).
    option43_format: Literal["url-string", "vendor-tlv", "auto"] = "auto"
    #: The one Option 43 format the profile promises; the other is read (per
    #: ``option43_format``) but observed. Default ``url-string``: the only sentence, "Phones
    #: can get a provisioning URL from DHCP Option 43." (10.2.3), names a provisioning URL
    #: carried by the option, as Option 160 carries one; nothing in the manual names a
    #: vendor sub-option (grounds.toml, 43/url-string and 43/vendor-tlv).
    option43_promised: Literal["url-string", "vendor-tlv"] = "url-string"
    #: The Option 43 sub-option code carrying the URL when TLVs are used.
    option43_suboption: int = 1
    #: How the phone encodes its model name in Option 77 (design/REAL-PHONE.md: "[?]
    #: Option 77 raw or RFC 3004 length-prefixed"): ``rfc3004`` (length-prefixed user
    #: class instances), ``raw`` (the bytes are the name), or ``either`` (no sentence fixes
    #: it, so both are accepted; the identification check names which one it saw).
    option77_encoding: Literal["either", "rfc3004", "raw"] = "either"
    #: Longest option value (bytes, after RFC 3396 joining) the firmware accepts; None
    #: means no limit. A longer value is malformed.
    max_value_length: int | None = None

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            allowed = literal_values(f.name)
            if allowed is not None and value not in allowed:
                raise ResolutionInputError(
                    f"switch {f.name}={value!r}: expected one of {', '.join(map(repr, allowed))}"
                )
        if not 1 <= self.option43_suboption <= 254:
            raise ResolutionInputError(
                f"switch option43_suboption={self.option43_suboption!r}: expected 1..254"
            )
        if self.max_value_length is not None and self.max_value_length < 1:
            raise ResolutionInputError(
                f"switch max_value_length={self.max_value_length!r}: expected a positive "
                "number or null"
            )

    def with_switches(self, **changes: Any) -> Interpretation:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ResolutionInputError(
                f"unknown switch {sorted(unknown)[0]!r}; known: "
                + ", ".join(f.name for f in dataclasses.fields(self))
            )
        return dataclasses.replace(self, **changes)

    def items(self) -> tuple[tuple[str, Any], ...]:
        return tuple((f.name, getattr(self, f.name)) for f in dataclasses.fields(self))


def parse_switch(spec: str) -> tuple[str, object]:
    """``NAME=VALUE`` (a ``--switch`` flag): digits are an int, ``null``/``none`` None, else
    the text; the switch's name and value are checked when a profile takes it."""
    name, sep, value = spec.partition("=")
    if not sep or not name.strip():
        raise ResolutionInputError(f"switch {spec!r}: expected NAME=VALUE")
    parsed: object = value.strip()
    if value.strip().isdigit():
        parsed = int(value)
    elif value.strip() in ("null", "none"):
        parsed = None
    return name.strip(), parsed


@functools.cache
def literal_values(name: str) -> tuple[Any, ...] | None:
    """The values switch ``name`` may take when its type is a ``Literal``, else None."""
    hint = typing.get_type_hints(Interpretation)[name]
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    return None


@dataclass(frozen=True)
class Rule:
    """A row of a manual table or a syntax form, with its stable id and source."""

    id: str
    promise: Promise
    citation: str
    summary: str


def load_rules(text: str, where: str = "rules.toml") -> dict[str, Rule]:
    """The rule table from its TOML text; a malformed table fails at import, naming the
    rule and the key (a broken table must never judge a phone)."""
    data = tomllib.loads(text)
    citations = data.get("citations", {})
    rules: dict[str, Rule] = {}
    for n, row in enumerate(data.get("rule", []), 1):
        rid = row.get("id", f"#{n}")
        if set(row) != {"id", "promise", "citation", "summary"}:
            raise ResolutionInputError(f"{where}: rule {rid}: keys must be id, promise, "
                                       f"citation, summary; got {sorted(row)}")
        if row["citation"] not in citations:
            raise ResolutionInputError(f"{where}: rule {rid}: unknown citation "
                                       f"{row['citation']!r}")
        if rid in rules:
            raise ResolutionInputError(f"{where}: rule {rid} appears twice")
        try:
            promise = Promise(row["promise"])
        except ValueError:
            raise ResolutionInputError(f"{where}: rule {rid}: unknown promise "
                                       f"{row['promise']!r}") from None
        rules[rid] = Rule(rid, promise, citations[row["citation"]], row["summary"])
    return rules


#: The Option 43 formats; only the one named by the switch option43_promised is promised.
_OPTION43_FORMATS = ("43/url-string", "43/vendor-tlv")

#: Every rule of the core, by id (framework/resolution/rules.toml).
RULES: dict[str, Rule] = load_rules(
    resources.files("framework.resolution").joinpath("rules.toml").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Profile:
    """A firmware behaviour profile: switches plus the rules its manual marks pending."""

    name: str
    title: str
    pending: frozenset[str] = frozenset()
    interpretation: Interpretation = field(default_factory=Interpretation)

    def promise_of(self, rule_id: str) -> Promise:
        """The promise of ``rule_id`` under this profile.

        A composite id (``43/url-string+T10-1/firmware``) is as weak as its weakest part;
        a part the profile lists as pending (``43/*`` matches every Option 43 rule) is
        pending whatever its base promise.
        """
        parts = rule_id.split("+")
        return Promise.weakest(*(self._part_promise(p) for p in parts))

    def _part_promise(self, part: str) -> Promise:
        return self.part_status(part)[0]

    def part_status(self, part: str) -> tuple[Promise, str]:
        """The promise of one rule id and what decided it, in words a reason can use."""
        for pattern in self.pending:
            if part == pattern or (pattern.endswith("*") and part.startswith(pattern[:-1])):
                return Promise.PENDING, (f"{part}: '[Support pending]' in profile {self.name} "
                                         f"(pending {pattern})")
        rule = RULES.get(part)
        if rule is None:
            return Promise.UNSPECIFIED, f"{part}: no such rule"
        promised43 = f"43/{self.interpretation.option43_promised}"
        if part in _OPTION43_FORMATS and part != promised43:
            return Promise.UNSPECIFIED, (
                f"{part}: switch option43_promised="
                f"{self.interpretation.option43_promised} promises {promised43} only")
        return rule.promise, f"{part}: {rule.promise.value} ({rule.summary})"

    def unpromised_by(self, rule_ids: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        """Of the (composite) rule ids on a case's path, each part that is not promised,
        with the switch or pending mark that made it so (issue 16 item 8)."""
        parts = dict.fromkeys(p for r in rule_ids for p in r.split("+"))
        out = []
        for part in parts:
            promise, why = self.part_status(part)
            if promise is not Promise.PROMISED:
                out.append(why)
        return tuple(out)

    def with_switches(self, **changes: Any) -> Profile:
        return dataclasses.replace(self, interpretation=self.interpretation.with_switches(**changes))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "pending": sorted(self.pending),
            "switches": dict(self.interpretation.items()),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "profile") -> Profile:
        """Build a profile from plain data (e.g. a saved, inferred profile)."""
        if not isinstance(data, Mapping):
            raise ResolutionInputError(f"{where}: expected a mapping")
        unknown = set(data) - {"name", "title", "pending", "switches", "base"}
        if unknown:
            raise ResolutionInputError(f"{where}: unknown key {sorted(unknown)[0]!r}")
        base = PROFILES.get(str(data.get("base", "2.2")))
        if base is None:
            raise ResolutionInputError(f"{where}.base: unknown profile {data.get('base')!r}")
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise ResolutionInputError(f"{where}.name: expected a non-empty string")
        pending = data.get("pending", sorted(base.pending))
        if not isinstance(pending, list) or not all(isinstance(p, str) for p in pending):
            raise ResolutionInputError(f"{where}.pending: expected a list of rule ids")
        for p in pending:
            if p.rstrip("*") not in RULES and not any(r.startswith(p.rstrip("*")) for r in RULES):
                raise ResolutionInputError(f"{where}.pending: unknown rule id {p!r}")
        switches = data.get("switches", {})
        if not isinstance(switches, Mapping):
            raise ResolutionInputError(f"{where}.switches: expected a mapping")
        try:
            interp = base.interpretation.with_switches(**dict(switches))
        except ResolutionInputError as exc:
            raise ResolutionInputError(f"{where}.switches: {exc}") from None
        return cls(name=name, title=str(data.get("title", name)), pending=frozenset(pending),
                   interpretation=interp)


PROFILES: dict[str, Profile] = {
    "2.2": Profile(
        name="2.2",
        title="400HD Administrator's Manual 2.2.8 (LTRT-11950), 10.2.1-10.2.3",
    ),
    "3.4": Profile(
        name="3.4",
        title="400HD Administrator's Manual 3.4.3 (LTRT-11973): Option 66 'http://host' without "
              "67, Option 66 with names, and Option 43 are '[Support pending]'",
        pending=frozenset({"T10-2/r4-protocol-host", "T10-2/r6-66-names",
                           "T10-2/x-host-66-names", "43/*"}),
    ),
}


def get_profile(name: str) -> Profile:
    """The built-in profile ``name`` (``2.2``, ``3.4``), or a clear error."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ResolutionInputError(
            f"profile {name!r}: expected one of {', '.join(sorted(PROFILES))}"
        ) from None


def profile_for_version(version: str) -> Profile:
    """The profile for a firmware version string such as ``2.2.8.61``, ``3.4.3`` or
    ``UC_3.4.6.604.1`` (the UC firmware line)."""
    parts = version.strip().removeprefix("UC_").split(".")
    key = ".".join(parts[:2])
    if key in PROFILES:
        return PROFILES[key]
    raise ResolutionInputError(
        f"firmware version {version!r}: no behaviour profile for {key!r}; known: "
        + ", ".join(sorted(PROFILES))
    )
