"""The resolution core: DHCP options -> the firmware and configuration URLs a phone must request.

Pure: no I/O, no imports from the rest of the project. ``resolve()`` never raises on
option bytes; only bad *arguments* (an unknown model, a bad MAC, a bad URL option
number) raise :class:`ResolutionInputError`, before any option is read.

Admin Manual 2.2.8, 10.2.1-10.2.3: "Option 160 has the highest priority, following by
Option 66/67, and then Option 43."
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from framework.resolution.equivalence import urls_equivalent
from framework.resolution.model import (
    ExpectedProvisioning,
    OptionSet,
    PhoneIdentity,
    PhoneSettings,
    Promise,
    ProvisioningMethod,
    ResolutionInputError,
    SourceOutcome,
)
from framework.resolution.profiles import RULES, Interpretation, Profile, get_profile
from framework.resolution.syntax import (
    PROTOCOLS,
    Location,
    Malformed,
    Server,
    decode_value,
    expand_placeholders,
    parse_server,
    parse_tlvs,
    split_location,
    split_names,
    value_quirks,
)

SOURCE_66_67 = "66/67"
SOURCE_43 = "43"


@dataclass(frozen=True)
class _Context:
    phone: PhoneIdentity
    profile: Profile

    @property
    def interp(self) -> Interpretation:
        return self.profile.interpretation

    @property
    def mac(self) -> str:
        return self.phone.mac if self.interp.mac_case == "upper" else self.phone.mac.lower()


def resolve(
    options: OptionSet,
    phone: PhoneIdentity,
    profile: Profile | str = "2.2",
    settings: PhoneSettings | None = None,
) -> ExpectedProvisioning:
    """Which firmware and configuration URLs ``phone`` must request for ``options``.

    Example::

        >>> r = resolve({66: b"Audiocodes.com"}, PhoneIdentity("440HD", "001122334455"))
        >>> r.firmware_url, r.config_url, r.rule
        ('tftp://audiocodes.com/440HD.img', 'tftp://audiocodes.com/001122334455.cfg', 'T10-2/r2-host')
    """
    if isinstance(profile, str):
        profile = get_profile(profile)
    settings = settings or PhoneSettings()
    if not isinstance(options, dict):
        try:
            options = dict(options)
        except (TypeError, ValueError):
            raise ResolutionInputError("options: expected a mapping of option code -> bytes") \
                from None
    for code, value in options.items():
        if not isinstance(code, int) or not 0 <= code <= 255:
            raise ResolutionInputError(f"option code {code!r}: expected an integer 0-255")
        if not isinstance(value, bytes | bytearray | memoryview):
            raise ResolutionInputError(f"option {code}: expected bytes, got {type(value).__name__}")
    ctx = _Context(phone, profile)
    header = (f"Profile {profile.name} ({profile.title}); phone {phone.model}, MAC {phone.mac}; "
              f"provisioning/method={settings.method.value}, "
              f"provisioning/url_option_value={settings.url_option}.")

    if settings.method is not ProvisioningMethod.DYNAMIC:
        return _static_or_disabled(ctx, settings, header)

    url_label = str(settings.url_option)
    outcomes = [
        _with_quirks(_url_option(options.get(settings.url_option), url_label, ctx),
                     [options.get(settings.url_option)], ctx),
        _with_quirks(_option_66_67(options.get(66), options.get(67), ctx),
                     [options.get(66), options.get(67)], ctx),
        _with_quirks(_option_43(options.get(43), ctx), [options.get(43)], ctx),
    ]
    notes: list[str] = []
    if settings.url_option != 160 and 160 in options:
        notes.append(f"Option 160 is ignored: the phone reads Option {settings.url_option} "
                     "instead (provisioning/url_option_value).")

    winner: SourceOutcome | None = None
    consulted: list[SourceOutcome] = []
    for outcome in outcomes:
        consulted.append(outcome)
        if outcome.yields_url:
            winner = outcome
            break
        if outcome is outcomes[0] and outcome.rule == "T10-1/empty" \
                and ctx.interp.empty_url_option == "stop":
            notes.append("The empty URL option stops the search (switch empty_url_option=stop).")
            break

    promise = Promise.weakest(*(profile.promise_of(o.rule) for o in consulted))
    if winner is None:
        rule, fw, cfg, source = "none", None, None, None
    else:
        rule, fw, cfg, source = winner.rule, winner.firmware_url, winner.config_url, winner.source
    lines = [header]
    for o in outcomes:
        mark = "used" if o is winner else ("consulted" if o in consulted else "not consulted")
        lines.append(f"- Option {o.source} [{mark}]: {o.note} (rule {o.rule}; "
                     f"{_citation(o.rule)})")
    lines.extend(notes)
    if winner is None:
        lines.append("No source yields a URL: the phone requests no firmware or configuration "
                     "file from DHCP (it may still try SIP PnP or the redirect server).")
    else:
        lines.append(f"Option {winner.source} wins: the highest-priority source that yields a URL "
                     "(Admin Manual 10.2.2: 160, then 66/67, then 43).")
        lines.append(f"Firmware URL: {fw}")
        lines.append(f"Configuration URL: {cfg}")
        lines.append("Order: firmware first, then the configuration file (Admin Manual 10.1).")
    unpromised = profile.unpromised_by([o.rule for o in consulted])
    lines.append(_promise_sentence(promise, profile, unpromised))
    return ExpectedProvisioning(
        source=source, firmware_url=fw, config_url=cfg, rule=rule, promise=promise,
        explanation="\n".join(lines), profile=profile.name, considered=tuple(outcomes),
        switches=profile.interpretation.items(), unpromised_by=unpromised,
    )


def _with_quirks(outcome: SourceOutcome, raws: list[bytes | None], ctx: _Context
                 ) -> SourceOutcome:
    """Add the ``quirk/...`` rules of a source that yields a URL (they weaken its promise)."""
    if not outcome.yields_url:
        return outcome
    quirks = [q for raw in raws if raw is not None for q in value_quirks(raw, ctx.interp)]
    if not quirks:
        return outcome
    rule = "+".join([outcome.rule, *dict.fromkeys(quirks)])
    notes = "; ".join(RULES[q].summary for q in dict.fromkeys(quirks))
    return replace(outcome, rule=rule, promise=ctx.profile.promise_of(rule),
                   note=f"{outcome.note} ({notes})")


def _citation(rule: str) -> str:
    return "; ".join(dict.fromkeys(RULES[p].citation for p in rule.split("+") if p in RULES))


def _promise_sentence(promise: Promise, profile: Profile, unpromised: tuple[str, ...] = ()
                      ) -> str:
    why = f" Not promised because of {'; '.join(unpromised)}." if unpromised else ""
    if promise is Promise.PROMISED:
        return "Promised by the manual: a different request is a firmware failure."
    if promise is Promise.PENDING:
        return (f"Marked '[Support pending]' by the manual of profile {profile.name}: what the "
                f"phone does is recorded as an observation, not judged.{why}")
    return ("Not fixed by the manual: the expectation follows the named switches; what the "
            f"phone does is recorded as an observation, not judged.{why}")


def _static_or_disabled(ctx: _Context, settings: PhoneSettings, header: str) -> ExpectedProvisioning:
    if settings.method is ProvisioningMethod.DISABLE:
        rule, fw, cfg = "method/disable", None, None
        text = "Provisioning is disabled: DHCP options are ignored and nothing is requested."
    else:
        rule, fw, cfg = "method/static", settings.static_firmware_url, settings.static_config_url
        text = (f"Static provisioning: DHCP options are ignored; configured firmware URL {fw}, "
                f"configuration URL {cfg}.")
    promise = ctx.profile.promise_of(rule)
    unpromised = ctx.profile.unpromised_by([rule])
    return ExpectedProvisioning(
        source=None, firmware_url=fw, config_url=cfg, rule=rule, promise=promise,
        explanation="\n".join([header, text, _promise_sentence(promise, ctx.profile,
                                                                 unpromised)]),
        profile=ctx.profile.name, switches=ctx.profile.interpretation.items(),
        unpromised_by=unpromised,
    )


# --- building URLs ---------------------------------------------------------------------


def _file_url(server: Server, protocol: str, directory: str, name: str, ctx: _Context) -> str:
    path = name[1:] if name.startswith("/") else directory + name
    return f"{protocol}://{server.authority(ctx.interp)}/{path}"


def _urls(server: Server, protocol: str, directory: str, firmware: str | None,
          config: str | None, ctx: _Context, *, expand: bool) -> tuple[str, str]:
    """Firmware and configuration URLs; a missing name gets its default (Table 10-1)."""
    if expand:
        firmware = expand_placeholders(firmware, ctx.phone.model, ctx.mac) if firmware else firmware
        config = expand_placeholders(config, ctx.phone.model, ctx.mac) if config else config
    fw_name = firmware or f"{ctx.phone.model}.img"
    cfg_name = config or f"{ctx.mac}.cfg"
    cfg_dir = directory if ctx.interp.config_location == "firmware-directory" else ""
    if not firmware:
        cfg_dir = directory  # a directory without a firmware name holds both defaults
    return (_file_url(server, protocol, directory, fw_name, ctx),
            _file_url(server, protocol, cfg_dir, cfg_name, ctx))


# --- Option 160 (or the configured URL option) and the same syntax in Option 43 ------


def _parse_url_value(raw: bytes, ctx: _Context, prefix: str
                     ) -> tuple[Location, str] | tuple[None, SourceOutcome]:
    """Shared first steps for Table 10-1 syntax; on failure returns a no-URL outcome."""
    source = prefix
    text = decode_value(raw, ctx.interp)
    if isinstance(text, Malformed):
        return None, _no_url(source, f"{source}/malformed" if source == SOURCE_43 else
                             "T10-1/malformed", f"unusable value: {text.reason}")
    if not text:
        return None, _no_url(source, "T10-1/empty" if source != SOURCE_43 else "43/malformed",
                             "present but empty")
    parsed = parse_server(text)
    if isinstance(parsed, Malformed):
        return None, _no_url(source, "T10-1/malformed", f"{text!r}: {parsed.reason}")
    server, path = parsed
    if server.ipv6 and ctx.interp.ipv6_literal == "no-url":
        return None, _no_url(source, "T10-1/malformed",
                             f"{text!r}: IPv6 literal host (switch ipv6_literal=no-url)")
    loc = split_location(server, path, ctx.interp)
    if isinstance(loc, Malformed):
        return None, _no_url(source, "T10-1/malformed", f"{text!r}: {loc.reason}")
    return loc, text


def _no_url(source: str, rule: str, note: str) -> SourceOutcome:
    return SourceOutcome(source=source, present=True, rule=rule, promise=Promise.UNSPECIFIED,
                         note=note + ": no URL from this source")


def _table_10_1(loc: Location, text: str, source: str, ctx: _Context, *, expand: bool
                ) -> SourceOutcome:
    """Table 10-1: the four ``<protocol>://<server>[/<firmware>][;<config>]`` forms."""
    server = loc.server
    rules: list[str] = []
    protocol = server.protocol
    if protocol is None:
        if ctx.interp.url_option_bare_host == "no-url":
            return _no_url(source, "T10-1/bare-host",
                           f"{text!r} has no <protocol>:// (switch url_option_bare_host=no-url)")
        protocol = ctx.interp.default_protocol
        rules.append("T10-1/bare-host")
    elif protocol not in PROTOCOLS:
        return _no_url(source, "T10-1/unknown-protocol",
                       f"{text!r}: protocol {server.given_protocol!r} is not one of "
                       + ", ".join(PROTOCOLS))
    directory = loc.directory
    names = loc.names
    if names is None:
        if loc.trailing_slash:
            rules.insert(0, "T10-1/directory")
            if ctx.interp.trailing_slash == "server-root":
                directory = ""
        else:
            rules.insert(0, "T10-1/server")
        firmware = config = None
    else:
        firmware = names[0] or None
        config = names[1] if len(names) > 1 and names[1] else None
        form = ("T10-1/firmware-config" if firmware and config else
                "T10-1/config" if config else
                "T10-1/firmware" if firmware else "T10-1/server")
        rules.insert(0, form)
        if directory:
            rules.append("T10-1/subdirectory")
    fw, cfg = _urls(server, protocol, directory, firmware, config, ctx, expand=expand)
    rule = "+".join(rules)
    return SourceOutcome(
        source=source, present=True, rule=rule, promise=ctx.profile.promise_of(rule),
        note=f"{text!r} is {RULES[rules[0]].summary}", firmware_url=fw, config_url=cfg,
    )


def _url_option(raw: bytes | None, label: str, ctx: _Context) -> SourceOutcome:
    if raw is None:
        return SourceOutcome(source=label, present=False, rule="T10-1/absent",
                             promise=Promise.PROMISED, note="not received")
    parsed, info = _parse_url_value(bytes(raw), ctx, label)
    if parsed is None:
        assert isinstance(info, SourceOutcome)
        return info
    assert isinstance(info, str)
    return _table_10_1(parsed, info, label, ctx, expand=True)


# --- Option 66/67 ------------------------------------------------------------------------


def _option_66_67(raw66: bytes | None, raw67: bytes | None, ctx: _Context) -> SourceOutcome:
    """Admin Manual 2.2.8, 10.2.2, Table 10-2."""
    src = SOURCE_66_67
    if raw66 is None:
        return SourceOutcome(src, False, "T10-2/r1-no-66", Promise.PROMISED,
                             "Option 66 not received: no URL from 66/67 whatever 67 holds")
    text66 = decode_value(bytes(raw66), ctx.interp)
    if isinstance(text66, Malformed):
        return _no_url(src, "T10-2/x-malformed", f"Option 66 unusable: {text66.reason}")
    if not text66:
        return SourceOutcome(src, True, "T10-2/r1-no-66", Promise.PROMISED,
                             "Option 66 is empty: no URL from 66/67 whatever 67 holds")
    parsed = parse_server(text66)
    if isinstance(parsed, Malformed):
        return _no_url(src, "T10-2/x-malformed", f"Option 66 {text66!r}: {parsed.reason}")
    server, path = parsed
    if server.ipv6 and ctx.interp.ipv6_literal == "no-url":
        return _no_url(src, "T10-2/x-malformed", f"Option 66 {text66!r}: IPv6 literal host")
    bare = server.protocol is None
    protocol: str
    if bare:
        protocol = ctx.interp.default_protocol
    elif server.protocol in PROTOCOLS:
        protocol = server.protocol
    else:
        return _no_url(src, "T10-2/x-unknown-protocol",
                       f"Option 66 {text66!r}: protocol {server.given_protocol!r} is not one of "
                       + ", ".join(PROTOCOLS))
    loc = split_location(server, path, ctx.interp)
    if isinstance(loc, Malformed):
        return _no_url(src, "T10-2/x-malformed", f"Option 66 {text66!r}: {loc.reason}")
    expand = ctx.interp.placeholders == "all-sources"
    proto_note = (f"no protocol, so {protocol} is added" if bare
                  else f"protocol {server.given_protocol}")
    rules: list[str]
    if loc.has_names:
        assert loc.names is not None
        firmware = loc.names[0] or None
        config = loc.names[1] if len(loc.names) > 1 and loc.names[1] else None
        rules = ["T10-2/x-host-66-names" if bare else "T10-2/r6-66-names"]
        if loc.directory:
            rules.append("T10-1/subdirectory")
        note = (f"Option 66 {text66!r} ({proto_note}) holds file names, so Option 67 "
                f"{'is ignored' if raw67 is not None else 'does not matter'}")
        directory = loc.directory
    else:
        directory = loc.directory
        if loc.trailing_slash and ctx.interp.trailing_slash == "server-root":
            directory = ""
        firmware, config, rules, note67 = _option_67(raw67, bare, ctx)
        if loc.directory:
            rules.append("T10-2/x-directory")
        if loc.names is not None:  # a ';' with nothing around it: names given, or none?
            rules.append("T10-2/x-empty-names")
        note = f"Option 66 {text66!r} ({proto_note}) has no file names; {note67}"
    fw, cfg = _urls(server, protocol, directory, firmware, config, ctx, expand=expand)
    rule = "+".join(rules)
    return SourceOutcome(src, True, rule, ctx.profile.promise_of(rule), note, fw, cfg)


def _option_67(raw67: bytes | None, bare: bool, ctx: _Context
               ) -> tuple[str | None, str | None, list[str], str]:
    defaults = "T10-2/r2-host" if bare else "T10-2/r4-protocol-host"
    named = "T10-2/r3-host-67-names" if bare else "T10-2/r5-protocol-host-67-names"
    if raw67 is None:
        return None, None, [defaults], "Option 67 not received: default names"
    text = decode_value(bytes(raw67), ctx.interp)
    if isinstance(text, Malformed):
        return None, None, [defaults, "T10-2/x-67-malformed"], \
            f"Option 67 unusable ({text.reason}): default names"
    if not text:
        return None, None, [defaults], "Option 67 is empty: default names"
    names = split_names(text, ctx.interp)
    if len(names) == 1:
        name = names[0]
        how = ctx.interp.option67_single_name
        as_config = how == "configuration" or (how == "by-extension" and
                                               name.lower().endswith(".cfg"))
        return (None, name, [named, "T10-2/x-67-single-name"],
                f"Option 67 {text!r} is one name, taken as the configuration file "
                f"(switch option67_single_name={how})") if as_config else \
               (name, None, [named, "T10-2/x-67-single-name"],
                f"Option 67 {text!r} is one name, taken as the firmware file "
                f"(switch option67_single_name={how})")
    firmware, config = names[0] or None, names[1] or None
    if firmware and config:
        return firmware, config, [named], f"Option 67 {text!r} names both files"
    return firmware, config, [named, "T10-2/x-67-partial"], \
        f"Option 67 {text!r} leaves a name empty: default name for it"


# --- Option 43 ---------------------------------------------------------------------------


def _option_43(raw: bytes | None, ctx: _Context) -> SourceOutcome:
    """Admin Manual 2.2.8, 10.2.3; the content format is the switch option43_format."""
    src = SOURCE_43
    if raw is None:
        return SourceOutcome(src, False, "43/absent", Promise.PROMISED, "not received")
    data = bytes(raw)
    fmt = ctx.interp.option43_format
    if fmt == "auto":
        head = data.lstrip(b" \t")
        scheme = head.split(b"://", 1)[0] if b"://" in head[:16] else b""
        fmt = "url-string" if scheme.isalpha() and scheme.isascii() else "vendor-tlv"
    if fmt == "vendor-tlv":
        tlvs = parse_tlvs(data)
        if isinstance(tlvs, Malformed):
            return _no_url(src, "43/malformed", f"vendor TLVs unusable: {tlvs.reason}")
        code = ctx.interp.option43_suboption
        if code not in tlvs:
            return _no_url(src, "43/no-suboption",
                           f"vendor TLVs {sorted(tlvs)} lack URL sub-option {code}")
        data, kind = tlvs[code], "43/vendor-tlv"
    else:
        kind = "43/url-string"
    parsed, info = _parse_url_value(data, ctx, src)
    if parsed is None:
        assert isinstance(info, SourceOutcome)
        return SourceOutcome(src, True, f"{kind}+{info.rule}", Promise.UNSPECIFIED, info.note)
    assert isinstance(info, str)
    inner = _table_10_1(parsed, info, src, ctx,
                        expand=ctx.interp.placeholders == "all-sources")
    if not inner.yields_url:
        return SourceOutcome(src, True, f"{kind}+{inner.rule}", Promise.UNSPECIFIED, inner.note)
    rule = f"{kind}+{inner.rule}"
    return SourceOutcome(src, True, rule, ctx.profile.promise_of(rule),
                         f"{'vendor sub-option ' + str(ctx.interp.option43_suboption) + ' ' if kind == '43/vendor-tlv' else ''}{inner.note}",
                         inner.firmware_url, inner.config_url)


# --- comparing URLs under the profile's comparison switches ------------------------------


def urls_match(expected: str, observed: str, *, mac: str, interp: Interpretation) -> bool:
    """Whether an observed URL is the expected one under the comparison switches.

    ``url_compare`` (default RFC 3986 6.2.2 equivalence: scheme and host case,
    percent-encoding, default port), ``host_compare`` under ``byte-exact``, and the MAC
    inside the path per ``mac_compare``; the rest of the path exactly.
    """
    return urls_equivalent(expected, observed, interp=interp, mac=mac,
                           mac_case=interp.mac_compare == "exact")
