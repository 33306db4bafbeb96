"""Named test vectors from the manual: every row of Table 10-2, every example of Table 10-1.

Each vector cites its source. Phone: the manual's examples use a 440HD with MAC
001122334455 (Table 10-1); Table 10-2 writes ``<hardware type>`` and ``<mac>``.
Manual misprints are read as design/PROVISIONING.md says: ``.<mac>cfg`` is ``<mac>.cfg``,
``abc.image`` is ``abc.img``, ``Tftp``/``Audiocodes.com`` capitals are typography.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MODEL = "440HD"
MAC = "001122334455"

T101 = "Admin Manual 2.2.8, 10.2.1, Table 10-1"
T102 = "Admin Manual 2.2.8, 10.2.2, Table 10-2"


@dataclass(frozen=True)
class Vector:
    id: str
    source: str
    options: dict[int, bytes]
    firmware_url: str | None
    config_url: str | None
    winner: str | None
    rule: str
    profile: str = "2.2"
    promise: str = "promised"
    model: str = MODEL
    mac: str = MAC
    switches: dict[str, object] = field(default_factory=dict)


TABLE_10_2 = [
    Vector("t10-2-r1-66-absent", f"{T102} row 1 (Option 66 doesn't exist, 67 any)",
           {67: b"abc.img;efg.cfg"}, None, None, None, "none"),
    Vector("t10-2-r1-66-empty", f"{T102} row 1 (Option 66 empty, 67 any)",
           {66: b"", 67: b"abc.img;efg.cfg"}, None, None, None, "none"),
    Vector("t10-2-r2-host-name", f"{T102} row 2 (server address, no protocol; example Audiocodes.com)",
           {66: b"Audiocodes.com"}, "tftp://audiocodes.com/440HD.img",
           "tftp://audiocodes.com/001122334455.cfg", "66/67", "T10-2/r2-host"),
    Vector("t10-2-r2-host-ip", f"{T102} row 2 (server address, no protocol; example 192.168.0.11)",
           {66: b"192.168.0.11"}, "tftp://192.168.0.11/440HD.img",
           "tftp://192.168.0.11/001122334455.cfg", "66/67", "T10-2/r2-host"),
    Vector("t10-2-r3-host-67-names", f"{T102} row 3 (no protocol; 67 abc.img;efg.cfg)",
           {66: b"Audiocodes.com", 67: b"abc.img;efg.cfg"}, "tftp://audiocodes.com/abc.img",
           "tftp://audiocodes.com/efg.cfg", "66/67", "T10-2/r3-host-67-names"),
    Vector("t10-2-r4-http-host-name", f"{T102} row 4 (http://Audiocodes.com, no names)",
           {66: b"http://Audiocodes.com"}, "http://audiocodes.com/440HD.img",
           "http://audiocodes.com/001122334455.cfg", "66/67", "T10-2/r4-protocol-host"),
    Vector("t10-2-r4-http-host-ip", f"{T102} row 4 (http://192.168.0.11, no names)",
           {66: b"http://192.168.0.11"}, "http://192.168.0.11/440HD.img",
           "http://192.168.0.11/001122334455.cfg", "66/67", "T10-2/r4-protocol-host"),
    Vector("t10-2-r5-http-host-67-names", f"{T102} row 5 (http://Audiocodes.com; 67 abc.img;efg.cfg)",
           {66: b"http://Audiocodes.com", 67: b"abc.img;efg.cfg"}, "http://audiocodes.com/abc.img",
           "http://audiocodes.com/efg.cfg", "66/67", "T10-2/r5-protocol-host-67-names"),
    Vector("t10-2-r6-66-names-67-absent",
           f"{T102} row 6 (http://Audiocodes.com/abc.image;efg.cfg, 67 any)",
           {66: b"http://Audiocodes.com/abc.img;efg.cfg"}, "http://audiocodes.com/abc.img",
           "http://audiocodes.com/efg.cfg", "66/67", "T10-2/r6-66-names"),
    Vector("t10-2-r6-66-names-67-ignored",
           f"{T102} row 6 comment: 'If any file name exists in Option 66, the names in Option 67 "
           "are ignored.'",
           {66: b"http://Audiocodes.com/abc.img;efg.cfg", 67: b"other.img;other.cfg"},
           "http://audiocodes.com/abc.img", "http://audiocodes.com/efg.cfg", "66/67",
           "T10-2/r6-66-names"),
]

TABLE_10_1 = [
    Vector("t10-1-server", f"{T101} form 1, example ftp://192.168.2.1",
           {160: b"ftp://192.168.2.1"}, "ftp://192.168.2.1/440HD.img",
           "ftp://192.168.2.1/001122334455.cfg", "160", "T10-1/server"),
    Vector("t10-1-firmware", f"{T101} form 2, example tftp://192.168.2.1/different_firmware_name.img",
           {160: b"tftp://192.168.2.1/different_firmware_name.img"},
           "tftp://192.168.2.1/different_firmware_name.img",
           "tftp://192.168.2.1/001122334455.cfg", "160", "T10-1/firmware"),
    Vector("t10-1-firmware-config",
           f"{T101} form 3, example http://192.168.2.1/different_firmware_name.img; "
           "<MODEL>_<MAC>_conf.cfg (space after ';')",
           {160: b"http://192.168.2.1/different_firmware_name.img; <MODEL>_<MAC>_conf.cfg"},
           "http://192.168.2.1/different_firmware_name.img",
           "http://192.168.2.1/440HD_001122334455_conf.cfg", "160", "T10-1/firmware-config"),
    Vector("t10-1-config", f"{T101} form 4, example https://192.168.2.1/;<MODEL>_<MAC>_conf.cfg",
           {160: b"https://192.168.2.1/;<MODEL>_<MAC>_conf.cfg"},
           "https://192.168.2.1/440HD.img", "https://192.168.2.1/440HD_001122334455_conf.cfg",
           "160", "T10-1/config"),
]

PROFILE_3_4 = [
    Vector("t10-2-r4-pending-3.4", "Admin Manual 3.4.3 Table 10-2: http://host without 67 "
           "'[Support pending]'", {66: b"http://Audiocodes.com"}, "http://audiocodes.com/440HD.img",
           "http://audiocodes.com/001122334455.cfg", "66/67", "T10-2/r4-protocol-host",
           profile="3.4", promise="pending"),
    Vector("t10-2-r6-pending-3.4", "Admin Manual 3.4.3 Table 10-2: names in Option 66 "
           "'[Support pending]'", {66: b"http://Audiocodes.com/abc.img;efg.cfg"},
           "http://audiocodes.com/abc.img", "http://audiocodes.com/efg.cfg", "66/67",
           "T10-2/r6-66-names", profile="3.4", promise="pending"),
    Vector("t10-2-r5-promised-3.4", "Admin Manual 3.4.3 Table 10-2: http://host with 67 names "
           "is not pending", {66: b"http://Audiocodes.com", 67: b"abc.img;efg.cfg"},
           "http://audiocodes.com/abc.img", "http://audiocodes.com/efg.cfg", "66/67",
           "T10-2/r5-protocol-host-67-names", profile="3.4"),
    Vector("t10-2-r2-promised-3.4", "Admin Manual 3.4.3 Table 10-2: bare host is supported",
           {66: b"Audiocodes.com"}, "tftp://audiocodes.com/440HD.img",
           "tftp://audiocodes.com/001122334455.cfg", "66/67", "T10-2/r2-host", profile="3.4"),
    Vector("opt43-pending-3.4", "Admin Manual 3.4.3 10.2.3: Option 43 '[support pending]'",
           {43: b"http://h43.example/a.img;b.cfg"}, "http://h43.example/a.img",
           "http://h43.example/b.cfg", "43", "43/url-string+T10-1/firmware-config",
           profile="3.4", promise="pending"),
]

ALL = TABLE_10_2 + TABLE_10_1 + PROFILE_3_4
