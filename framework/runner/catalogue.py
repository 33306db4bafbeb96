"""The case catalogue: every row of Table 10-2, every form of Table 10-1, the precedence
matrix and robustness cases, as data.

A case says only what the phone is given (DHCP options and phone settings) and which
manual sentence it exercises. It never says what the phone must request: that comes from
the resolution core at run time, so the catalogue cannot disagree with the core.

Option values name the lab's provisioning server through two placeholders filled in from
the rig: ``{ip}`` (the lab address) and ``{name}`` (a mixed-case host name the lab DNS
resolves to it, so host-case handling shows on the wire).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

T101 = "Admin Manual 2.2.8, 10.2.1, Table 10-1"
T102 = "Admin Manual 2.2.8, 10.2.2, Table 10-2"
S1023 = "Admin Manual 2.2.8, 10.2.3"
PREC = "Admin Manual 2.2.8, 10.2.2-10.2.3: Option 160 > 66/67 > 43"

#: The host name the lab DNS answers for the provisioning server (mixed case on purpose).
LAB_DNS_NAME = "AudioCodes.Lab.Example"


@dataclass(frozen=True)
class VendorTlv:
    """An Option 43 value made of one vendor sub-option (RFC 2132 8.4) carrying text."""

    suboption: int
    text: str

    def render(self, ip: str, name: str) -> bytes:
        value = self.text.format(ip=ip, name=name).encode("ascii")
        return bytes([self.suboption, len(value)]) + value + b"\xff"


@dataclass(frozen=True)
class Case:
    """One provisioning case: the options handed to the phone and the sentence it checks."""

    id: str
    group: str
    title: str
    source: str
    options: Mapping[int, str | bytes | VendorTlv]
    url_option: int = 160
    tags: tuple[str, ...] = field(default=())

    def render(self, ip: str, name: str = LAB_DNS_NAME) -> dict[int, bytes]:
        """The option bytes for a lab whose server is ``ip`` / ``name``."""
        out: dict[int, bytes] = {}
        for code, value in self.options.items():
            if isinstance(value, VendorTlv):
                out[code] = value.render(ip, name)
            elif isinstance(value, bytes):
                out[code] = value.replace(b"{ip}", ip.encode()).replace(b"{name}", name.encode())
            else:
                out[code] = value.format(ip=ip, name=name).encode("ascii")
        return out

    def to_dict(self, ip: str, name: str = LAB_DNS_NAME) -> dict[str, object]:
        rendered = self.render(ip, name)
        return {
            "id": self.id,
            "group": self.group,
            "title": self.title,
            "source": self.source,
            "url_option": self.url_option,
            "options": {str(k): _show(v) for k, v in sorted(rendered.items())},
        }


def _show(value: bytes) -> str:
    """Readable and lossless: text when printable ASCII, else ``hex:...``."""
    if value.isascii() and all(32 <= b < 127 for b in value):
        return value.decode()
    return "hex:" + value.hex()


def _c(id: str, group: str, title: str, source: str,
       options: Mapping[int, str | bytes | VendorTlv],
       **kw: object) -> Case:
    return Case(id=id, group=group, title=title, source=source, options=options, **kw)  # type: ignore[arg-type]


PROTOCOLS = ("tftp", "http", "https", "ftp")

TABLE_10_2: list[Case] = [
    _c("t10-2/r1-66-absent", "table-10-2", "Option 66 absent, Option 67 with names",
       f"{T102} row 1", {67: "abc.img;efg.cfg"}),
    _c("t10-2/r1-66-empty", "table-10-2", "Option 66 present but empty, Option 67 with names",
       f"{T102} row 1", {66: "", 67: "abc.img;efg.cfg"}),
    _c("t10-2/r2-host-name", "table-10-2", "Option 66 host name without protocol",
       f"{T102} row 2 (example Audiocodes.com)", {66: "{name}"}),
    _c("t10-2/r2-host-ip", "table-10-2", "Option 66 IP address without protocol",
       f"{T102} row 2 (example 192.168.0.11)", {66: "{ip}"}),
    _c("t10-2/r2-host-67-empty", "table-10-2", "Option 66 host, Option 67 present but empty",
       f"{T102} row 2 (file names do not exist)", {66: "{name}", 67: ""}),
    _c("t10-2/r3-host-name-67-names", "table-10-2", "Option 66 host name, 67 abc.img;efg.cfg",
       f"{T102} row 3", {66: "{name}", 67: "abc.img;efg.cfg"}),
    _c("t10-2/r3-host-ip-67-names", "table-10-2", "Option 66 IP, 67 abc.img;efg.cfg",
       f"{T102} row 3", {66: "{ip}", 67: "abc.img;efg.cfg"}),
    *[_c(f"t10-2/r4-{p}-host", "table-10-2", f"Option 66 {p}://host, no names",
         f"{T102} row 4 (example http://Audiocodes.com)", {66: f"{p}://{{name}}"})
      for p in PROTOCOLS],
    _c("t10-2/r4-http-ip", "table-10-2", "Option 66 http://IP, no names",
       f"{T102} row 4 (example http://192.168.0.11)", {66: "http://{ip}"}),
    *[_c(f"t10-2/r5-{p}-host-67-names", "table-10-2", f"Option 66 {p}://host, 67 names",
         f"{T102} row 5", {66: f"{p}://{{name}}", 67: "abc.img;efg.cfg"})
      for p in PROTOCOLS],
    _c("t10-2/r6-66-names", "table-10-2", "Option 66 http://host/abc.img;efg.cfg, no 67",
       f"{T102} row 6", {66: "http://{name}/abc.img;efg.cfg"}),
    _c("t10-2/r6-66-names-67-ignored", "table-10-2",
       "Option 66 with names; Option 67 names are ignored",
       f"{T102} row 6: 'If any file name exists in Option 66, the names in Option 67 are "
       "ignored.'", {66: "http://{name}/abc.img;efg.cfg", 67: "xyz.img;uvw.cfg"}),
    _c("t10-2/x-host-66-names", "table-10-2",
       "Option 66 bare host with names 192.168.0.11/abc.img;efg.cfg, no 67",
       f"{T102} general comment: 'If any file name exists in Option 66, the names in Option "
       "67 are ignored.' with row 2's tftp default", {66: "{ip}/abc.img;efg.cfg"}),
    _c("t10-2/x-host-66-names-67-ignored", "table-10-2",
       "Option 66 bare host with names; Option 67 names are ignored",
       f"{T102} general comment: 'If any file name exists in Option 66, the names in Option "
       "67 are ignored.'", {66: "{ip}/abc.img;efg.cfg", 67: "xyz.img;uvw.cfg"}),
]

TABLE_10_1: list[Case] = [
    _c("t10-1/server-ftp", "table-10-1", "ftp://server (manual example 1)",
       f"{T101} example ftp://192.168.2.1", {160: "ftp://{ip}"}),
    _c("t10-1/firmware-tftp", "table-10-1", "tftp://server/firmware (manual example 2)",
       f"{T101} example tftp://192.168.2.1/different_firmware_name.img",
       {160: "tftp://{ip}/different_firmware_name.img"}),
    _c("t10-1/firmware-config-http", "table-10-1",
       "http://server/firmware; <MODEL>_<MAC>_conf.cfg (manual example 3)",
       f"{T101} example http://192.168.2.1/different_firmware_name.img; <MODEL>_<MAC>_conf.cfg",
       {160: "http://{ip}/different_firmware_name.img; <MODEL>_<MAC>_conf.cfg"}),
    _c("t10-1/config-https", "table-10-1", "https://server/;<MODEL>_<MAC>_conf.cfg (example 4)",
       f"{T101} example https://192.168.2.1/;<MODEL>_<MAC>_conf.cfg",
       {160: "https://{ip}/;<MODEL>_<MAC>_conf.cfg"}),
    *[_c(f"t10-1/server-{p}-name", "table-10-1", f"{p}://host-name (form 1)",
         f"{T101} form <protocol>://<server>", {160: f"{p}://{{name}}"}) for p in PROTOCOLS],
    *[_c(f"t10-1/firmware-config-{p}-name", "table-10-1", f"{p}://server/fw;cfg (form 3)",
         f"{T101} form <protocol>://<server>/<firmware>;<configuration>",
         {160: f"{p}://{{name}}/fw-{p}.img;cfg-{p}.cfg"}) for p in PROTOCOLS],
]

_SOURCES: dict[str, dict[int, str]] = {
    "160": {160: "http://{ip}/fw160.img;cfg160.cfg"},
    "66-67": {66: "{ip}", 67: "fw66.img;cfg66.cfg"},
    "43": {43: "ftp://{ip}/fw43.img;cfg43.cfg"},
}

PRECEDENCE: list[Case] = [
    *[_c("precedence/" + "+".join(combo), "precedence",
         "Sources present: " + ", ".join(combo), PREC,
         {k: v for s in combo for k, v in _SOURCES[s].items()})
      for n in range(1, 4) for combo in itertools.combinations(_SOURCES, n)],
    _c("precedence/160-empty-falls-to-66", "precedence",
       "Option 160 present but empty: 66/67 used", f"{PREC}; fall-through",
       {160: "", **_SOURCES["66-67"]}),
    _c("precedence/160-unknown-protocol-falls-to-66", "precedence",
       "Option 160 with an unsupported protocol: 66/67 used",
       f"{T101}: protocol one of ftp, tftp, http, https; fall-through",
       {160: "sftp://{ip}/x.img", **_SOURCES["66-67"]}),
    _c("precedence/66-empty-falls-to-43", "precedence",
       "Option 66 empty (67 set): Option 43 used", f"{T102} row 1; {S1023}",
       {66: "", 67: "fw66.img;cfg66.cfg", **_SOURCES["43"]}),
    _c("precedence/160-invalid-falls-to-43", "precedence",
       "Option 160 with an unsupported protocol, no 66/67: Option 43 used",
       f"{T101}: protocol one of ftp, tftp, http, https; {PREC}; fall-through",
       {160: "sftp://{ip}/x.img", **_SOURCES["43"]}),
    _c("precedence/66-absent-67-set-falls-to-43", "precedence",
       "Option 66 absent, Option 67 set: Option 43 used", f"{T102} row 1; {S1023}",
       {67: "fw66.img;cfg66.cfg", **_SOURCES["43"]}),
    _c("precedence/url-option-224-beats-160", "precedence",
       "provisioning/url_option_value=224: Option 224 read, Option 160 ignored",
       "Admin Manual: provisioning/url_option_value (the option read instead of 160)",
       {224: "tftp://{ip}/fw224.img;cfg224.cfg", **_SOURCES["160"]}, url_option=224,
       tags=("needs-settings",)),
]

ROBUSTNESS: list[Case] = [
    _c("robust/66-67-nul-terminated", "robustness",
       "Options 66 and 67 NUL-terminated (as some DHCP servers send them)",
       "LAB-NOTES: NUL-terminated 66/67", {66: b"{ip}\x00", 67: b"abc.img;efg.cfg\x00"}),
    _c("robust/160-long-rfc3396", "robustness",
       "Option 160 longer than 255 bytes (RFC 3396 split on the wire)",
       f"{T101}; RFC 3396 long options",
       {160: "http://{ip}/" + "d" * 260 + ".img;long.cfg"}),
    _c("robust/66-non-ascii", "robustness", "Option 66 with non-ASCII bytes, 43 set",
       "no manual sentence: the value is unusable", {66: b"\xff\xfe{ip}", **{43: b"ftp://{ip}/fw43.img"}}),
    _c("robust/67-semicolon-only", "robustness", "Option 67 is a lone ';'",
       "no manual sentence", {66: "{ip}", 67: ";"}),
    _c("robust/160-whitespace", "robustness", "Option 160 with spaces around the names",
       f"{T101} example has a space after ';'", {160: "  http://{ip}/a.img ;  b.cfg  "}),
    _c("robust/160-subdirectory", "robustness",
       "Option 160 names files under a sub-directory (integrator style)",
       "[F] field configurations: http://host/420HD/420HD.img;420HD.cfg",
       {160: "http://{ip}/phones/fw.img;ph.cfg"}),
    _c("robust/160-directory-url", "robustness", "Option 160 is a directory URL ending in '/'",
       "[F] a trailing '/' directory URL gets <MAC>.cfg appended", {160: "http://{ip}/phones/"}),
    _c("robust/43-vendor-tlv", "robustness",
       "Option 43 as vendor-encapsulated sub-option 1 carrying a URL",
       f"{S1023}; PROVISIONING.md: vendor TLV with a configurable sub-option code",
       {43: VendorTlv(1, "ftp://{ip}/fw43.img;cfg43.cfg")}),
    _c("robust/43-empty", "robustness", "Option 43 present but empty, nothing else",
       f"{S1023}; {T102} row 1 (no source yields a URL)", {43: ""}),
    _c("robust/43-malformed", "robustness",
       "Option 43 vendor TLV whose length runs past the option, nothing else",
       f"{S1023}; RFC 2132 8.4 vendor-encapsulated options", {43: b"\x01\x50abc"}),
    _c("robust/no-options", "robustness", "No provisioning option at all",
       "Admin Manual: without a provisioning option nothing is requested from DHCP", {}),
]

ALL_CASES: list[Case] = TABLE_10_2 + TABLE_10_1 + PRECEDENCE + ROBUSTNESS
GROUPS = {"table-10-2": TABLE_10_2, "table-10-1": TABLE_10_1, "precedence": PRECEDENCE,
          "robustness": ROBUSTNESS}


def by_id(case_id: str) -> Case:
    for case in ALL_CASES:
        if case.id == case_id:
            return case
    raise KeyError(f"no case {case_id!r}")


assert len({c.id for c in ALL_CASES}) == len(ALL_CASES), "case ids must be unique"
