"""Text-level parsing of provisioning values: bytes -> text -> server address and names.

Pure functions. Each returns either a parsed value or a :class:`Malformed` reason;
nothing here raises on any input bytes.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from framework.resolution.profiles import Interpretation

PROTOCOLS = ("tftp", "ftp", "http", "https")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$", re.DOTALL)
_LABEL_RE = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_\-]*[A-Za-z0-9_])?$")
_PORT_RE = re.compile(r"^[0-9]{1,5}$")


@dataclass(frozen=True)
class Malformed:
    """Why a value cannot be used, in words a technician understands."""

    reason: str


def decode_value(raw: bytes, interp: Interpretation) -> str | Malformed:
    """Option bytes -> text, applying the NUL, length and white-space switches."""
    data = bytes(raw)
    if interp.max_value_length is not None and len(data) > interp.max_value_length:
        return Malformed(f"{len(data)} bytes, longer than max_value_length="
                         f"{interp.max_value_length}")
    if data.endswith(b"\x00"):
        if interp.trailing_nul == "malformed":
            return Malformed("ends with NUL padding (trailing_nul=malformed)")
        data = data.rstrip(b"\x00")
    nul = data.find(b"\x00")
    if nul >= 0:
        return Malformed(f"NUL byte inside the value at offset {nul}")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        return Malformed(f"non-ASCII byte 0x{data[exc.start]:02x} at offset {exc.start}")
    bad = [c for c in text if (ord(c) < 0x20 and c not in "\t\r\n") or ord(c) == 0x7F]
    if bad:
        return Malformed(f"control character 0x{ord(bad[0]):02x} in the value")
    if interp.whitespace == "strip":
        text = text.strip()
    return text


_DOCUMENTED_WS = re.compile(r";[ \t]+")


def value_quirks(raw: bytes, interp: Interpretation) -> tuple[str, ...]:
    """The readings of ``raw`` that no manual sentence fixes (each a ``quirk/...`` rule).

    Table 10-1's example documents a space after ``;``; any other white space that the
    ``whitespace`` switch strips, trailing NULs the ``trailing_nul`` switch drops, and a
    value over 255 bytes (only deliverable as RFC 3396 long option) are quirks.
    """
    out = []
    data = bytes(raw)
    if data.endswith(b"\x00") and interp.trailing_nul == "strip":
        out.append("quirk/nul-padding")
        data = data.rstrip(b"\x00")
    if interp.whitespace == "strip":
        text = data.decode("ascii", "replace")
        documented = _DOCUMENTED_WS.sub(";", text)
        stripped = ";".join(part.strip() for part in text.strip().split(";"))
        if documented != stripped:
            out.append("quirk/whitespace")
    if data.count(b";") > 1:
        out.append("quirk/extra-names")
    if len(raw) > 255:
        out.append("quirk/long-option")
    return tuple(out)


@dataclass(frozen=True)
class Server:
    """``[<protocol>://][user@]host[:port]`` as parsed."""

    protocol: str | None  # lower-case, or None when not given
    given_protocol: str | None  # as written (for explanations)
    userinfo: str | None
    host: str  # as written
    port: str | None
    ipv6: bool

    def authority(self, interp: Interpretation) -> str:
        host = self.host.lower() if interp.host_case == "lower" and not self.ipv6 else self.host
        if self.ipv6:
            host = f"[{host}]"
        out = host if self.port is None else f"{host}:{self.port}"
        return out if self.userinfo is None else f"{self.userinfo}@{out}"


@dataclass(frozen=True)
class Location:
    """A provisioning value split into server, directory and names.

    ``directory`` is the path before the firmware name (``"420HD/"`` or ``""``);
    ``names`` is None when the value has no file-name part at all, else the
    ``;``-separated names, white space handled per the switches.
    """

    server: Server
    directory: str
    names: tuple[str, ...] | None
    trailing_slash: bool

    @property
    def has_names(self) -> bool:
        return self.names is not None and any(self.names)


def parse_server(text: str) -> tuple[Server, str] | Malformed:
    """Split ``[proto://][user@]host[:port][/path]`` into the server and the path text."""
    given: str | None = None
    rest = text
    m = _SCHEME_RE.match(text)
    if m:
        given, rest = m.group(1), m.group(2)
    elif "://" in text:
        return Malformed(f"protocol part of {text!r} is not a valid URL scheme")
    slash = rest.find("/")
    authority, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash + 1:])
    userinfo = None
    if "@" in authority:
        userinfo, authority = authority.rsplit("@", 1)
    ipv6 = False
    port: str | None = None
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return Malformed(f"unclosed '[' in server address {authority!r}")
        host, tail = authority[1:end], authority[end + 1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return Malformed(f"{host!r} is not an IPv6 address")
        ipv6 = True
        if tail:
            if not tail.startswith(":") or not _PORT_RE.match(tail[1:]):
                return Malformed(f"bad port {tail!r} after IPv6 address")
            port = tail[1:]
    else:
        host = authority
        if ":" in authority:
            host, port = authority.rsplit(":", 1)
            if not _PORT_RE.match(port):
                return Malformed(f"bad port {port!r} in server address {authority!r}")
        problem = _host_problem(host)
        if problem:
            return Malformed(problem)
    if port is not None and not 1 <= int(port) <= 65535:
        return Malformed(f"port {port} out of range 1-65535")
    protocol = given.lower() if given else None
    return Server(protocol, given, userinfo, host, port, ipv6), path


def _host_problem(host: str) -> str | None:
    if not host:
        return "no server address"
    if len(host) > 253:
        return f"server name of {len(host)} characters (at most 253)"
    name = host[:-1] if host.endswith(".") else host
    if all(part.isdigit() for part in name.split(".")) and name.count(".") == 3:
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            return f"{host!r} is not a valid IPv4 address"
        return None
    for label in name.split("."):
        if not label or len(label) > 63 or not _LABEL_RE.match(label):
            return f"{host!r} is not a valid host name"
    return None


def split_location(server: Server, path: str, interp: Interpretation) -> Location | Malformed:
    """Split the path after the server into directory and ``;``-separated names.

    Table 10-1: ``/<firmware>``, ``/<firmware>;<config>``, ``/;<config>``.
    """
    if not path:
        return Location(server, "", None, trailing_slash=False)
    head, sep, tail = path.partition(";")
    if interp.whitespace == "strip":
        head = head.strip()
    if "/" in head:
        directory, _, first = head.rpartition("/")
        directory += "/"
    else:
        directory, first = "", head
    trailing = head.endswith("/") and not sep
    if not sep:
        if not first:
            return Location(server, directory, None, trailing_slash=trailing)
        return Location(server, directory, (first,), trailing_slash=False)
    rest = tail.split(";")
    if interp.whitespace == "strip":
        rest = [r.strip() for r in rest]
    if len(rest) > 1 and any(rest[1:]) and interp.extra_names == "no-url":
        return Malformed(f"more than two ';'-separated names in {path!r}")
    return Location(server, directory, (first, rest[0]), trailing_slash=False)


def split_names(text: str, interp: Interpretation) -> tuple[str, ...]:
    """Option 67 ``abc.img;efg.cfg`` -> names (Table 10-2)."""
    parts = text.split(";")
    if interp.whitespace == "strip":
        parts = [p.strip() for p in parts]
    return tuple(parts[:2]) if len(parts) > 1 else (parts[0],)


def expand_placeholders(name: str, model: str, mac: str) -> str:
    """``<MODEL>`` and ``<MAC>`` in a file name (Table 10-1 example)."""
    return name.replace("<MODEL>", model).replace("<MAC>", mac)


def parse_tlvs(data: bytes) -> dict[int, bytes] | Malformed:
    """Option 43 vendor-encapsulated sub-options (RFC 2132 8.4): code, length, value."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0:
            i += 1
            continue
        if code == 255:
            break
        if i + 1 >= len(data):
            return Malformed(f"sub-option {code} at offset {i} has no length byte")
        length = data[i + 1]
        if i + 2 + length > len(data):
            return Malformed(
                f"sub-option {code} at offset {i} claims {length} bytes, "
                f"{len(data) - i - 2} remain"
            )
        out[code] = out.get(code, b"") + data[i + 2: i + 2 + length]
        i += 2 + length
    return out
