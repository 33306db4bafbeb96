"""URL equivalence: when an observed URL is the expected one (switch ``url_compare``).

RFC 3986 6.2.2 syntax-based normalisation: the scheme and the host are case-insensitive
(6.2.2.1; host names also by RFC 4343), hexadecimal digits of a percent-encoding are
case-insensitive (6.2.2.1) and a percent-encoded unreserved character is that character
(6.2.2.2); RFC 3986 6.2.3: a port that is the scheme's default, or empty, is no port.
Everything else (the path, the file names, the MAC in them) is compared exactly; the case
of the MAC is its own assertion (grounds.toml, ``mac-case``).

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from framework.resolution.profiles import Interpretation

#: Default ports of the provisioning protocols (RFC 3986 6.2.3 scheme-based normalisation).
DEFAULT_PORTS = {"http": "80", "https": "443", "ftp": "21", "tftp": "69"}
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_MAC_MARK = "\x00MAC\x00"


@dataclass(frozen=True)
class UrlParts:
    """A provisioning URL split as RFC 3986 3 names its parts (no query or fragment)."""

    scheme: str
    userinfo: str | None
    host: str
    port: str | None
    path: str  # after the authority, with its leading '/' (or empty)

    @classmethod
    def split(cls, url: str) -> UrlParts:
        scheme, sep, rest = url.partition("://")
        if not sep:
            return cls("", None, "", None, url)
        slash = rest.find("/")
        authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
        userinfo = None
        if "@" in authority:
            userinfo, authority = authority.rsplit("@", 1)
        if authority.startswith("["):
            host, _, tail = authority.partition("]")
            host += "]"
            port = tail[1:] if tail.startswith(":") else None
        elif ":" in authority:
            host, _, port_text = authority.rpartition(":")
            port = port_text
        else:
            host, port = authority, None
        return cls(scheme, userinfo, host, port, path)

    def normalised(self) -> UrlParts:
        """RFC 3986 6.2.2 and 6.2.3 normal form."""
        scheme = self.scheme.lower()
        port = self.port or None
        if port is not None and port.lstrip("0") == DEFAULT_PORTS.get(scheme, "").lstrip("0"):
            port = None
        return UrlParts(scheme, None if self.userinfo is None else _pct(self.userinfo),
                        self.host.lower(), port, _pct(self.path) or "/")


def _pct(text: str) -> str:
    """Percent-encodings: an unreserved character decoded, any other in upper-case hex."""
    def one(m: re.Match[str]) -> str:
        char = chr(int(m.group(1), 16))
        return char if char in _UNRESERVED else "%" + m.group(1).upper()
    return _PCT.sub(one, text)


def _without_mac_case(text: str, mac: str) -> str:
    if not mac:
        return text
    return re.sub(re.escape(mac), _MAC_MARK, text, flags=re.IGNORECASE)


def urls_equivalent(expected: str, observed: str, *, interp: Interpretation, mac: str = "",
                    mac_case: bool = True) -> bool:
    """Whether ``observed`` is ``expected`` under the switch ``url_compare``.

    ``mac_case=False`` compares the MAC in the path without case (the verdict then checks
    its case as the ``mac-case`` assertion, with its own ground).
    """
    if not mac_case:
        expected, observed = _without_mac_case(expected, mac), _without_mac_case(observed, mac)
    if interp.url_compare == "byte-exact":
        if interp.host_compare == "case-insensitive":
            e, o = UrlParts.split(expected), UrlParts.split(observed)
            return (e.scheme, e.userinfo, e.host.lower(), e.port, e.path) == \
                (o.scheme, o.userinfo, o.host.lower(), o.port, o.path)
        return expected == observed
    return UrlParts.split(expected).normalised() == UrlParts.split(observed).normalised()


def forgiven(expected: str, observed: str, *, interp: Interpretation, mac: str = "",
             mac_case: bool = True, mac_note: bool = True) -> tuple[str, ...]:
    """What equivalence forgave between two equivalent, not identical URLs, in words
    (``host case differs (RFC 3986 6.2.2.1, RFC 4343)``...); empty when they are identical
    or not equivalent. ``mac_note=False`` leaves out a MAC case difference (the verdict
    judges it as its own assertion)."""
    if expected == observed or not urls_equivalent(expected, observed, interp=interp,
                                                   mac=mac, mac_case=mac_case):
        return ()
    e, o = UrlParts.split(expected), UrlParts.split(observed)
    out = []
    if e.scheme != o.scheme:
        out.append("protocol case differs (RFC 3986 6.2.2.1)")
    if e.host != o.host:
        out.append("host case differs (RFC 3986 6.2.2.1, RFC 4343)")
    if e.port != o.port:
        port = o.port or e.port
        out.append(f"port {port} is the default (RFC 3986 6.2.3)" if port else
                   "empty port (RFC 3986 6.2.3)")
    e_rest, o_rest = f"{e.userinfo}@{e.path}", f"{o.userinfo}@{o.path}"
    masked_e, masked_o = (e_rest, o_rest) if mac_case else (
        _without_mac_case(e_rest, mac), _without_mac_case(o_rest, mac))
    if masked_e != masked_o:
        out.append("percent-encoding differs (RFC 3986 6.2.2.2)")
    if not mac_case and mac_note and _pct(e_rest) != _pct(o_rest):
        out.append("MAC case differs (switch mac_compare=case-insensitive)")
    return tuple(out)
