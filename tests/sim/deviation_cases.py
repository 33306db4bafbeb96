"""For each catalogue deviation: DHCP options that show it, and the requests expected from
the faithful and from the deviant firmware (protocol, name as the server sees it).

Used twice: as pure plans (test_firmware.py) and on the wire against independent servers
(test_deviations_on_wire.py). ``{MAC}`` / ``{mac}`` stand for the phone's MAC in upper /
lower case; ``dns:NAME`` is a DNS query for NAME (case as sent).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SERVER = "192.0.2.1"
REDIRECT = "dns:redirect.audiocodes.com"


@dataclass(frozen=True)
class DeviationCase:
    deviation: str
    options: dict[int, bytes]
    faithful: tuple[str, ...]
    deviant: tuple[str, ...]
    settings: dict[str, str] = field(default_factory=dict)


def _url(text: str) -> bytes:
    return text.replace("SERVER", SERVER).encode()


CASES = [
    DeviationCase("mac-case-flipped", {160: _url("http://SERVER/")},
                  ("http:/440HD.img", "http:/{MAC}.cfg"),
                  ("http:/440HD.img", "http:/{mac}.cfg")),
    DeviationCase("host-case-kept", {160: b"http://Prov.Example.COM/fw.img;cfg.cfg"},
                  ("dns:prov.example.com", "http:/fw.img", "http:/cfg.cfg"),
                  ("dns:Prov.Example.COM", "http:/fw.img", "http:/cfg.cfg")),
    DeviationCase("model-placeholder-ignored", {160: _url("http://SERVER/fw.img;<MODEL>_<MAC>.cfg")},
                  ("http:/fw.img", "http:/440HD_{MAC}.cfg"),
                  ("http:/fw.img", "http:/_{MAC}.cfg")),
    DeviationCase("semicolon-space-kept", {160: _url("http://SERVER/fw.img; cfg.cfg")},
                  ("http:/fw.img", "http:/cfg.cfg"),
                  ("http:/fw.img", "http:/ cfg.cfg")),
    DeviationCase("config-at-server-root", {160: _url("http://SERVER/dir/fw.img;cfg.cfg")},
                  ("http:/dir/fw.img", "http:/dir/cfg.cfg"),
                  ("http:/dir/fw.img", "http:/cfg.cfg")),
    DeviationCase("option67-overrides-66-names",
                  {66: _url("http://SERVER/a66.img;b66.cfg"), 67: b"c67.img;d67.cfg"},
                  ("http:/a66.img", "http:/b66.cfg"),
                  ("http:/c67.img", "http:/d67.cfg")),
    DeviationCase("option67-over-bare-host-names",
                  {66: _url("SERVER/a66.img;b66.cfg"), 67: b"c67.img;d67.cfg"},
                  ("tftp:a66.img", "tftp:b66.cfg"),
                  ("tftp:c67.img", "tftp:d67.cfg")),
    DeviationCase("no-default-tftp", {66: _url("SERVER")},
                  ("tftp:440HD.img", "tftp:{MAC}.cfg"),
                  (REDIRECT,)),
    DeviationCase("option43-over-66",
                  {66: _url("http://SERVER/a66.img;b66.cfg"), 43: _url("http://SERVER/a43.img;b43.cfg")},
                  ("http:/a66.img", "http:/b66.cfg"),
                  ("http:/a43.img", "http:/b43.cfg")),
    DeviationCase("option66-over-160",
                  {160: _url("http://SERVER/a160.img;b160.cfg"), 66: _url("tftp://SERVER/a66.img;b66.cfg")},
                  ("http:/a160.img", "http:/b160.cfg"),
                  ("tftp:a66.img", "tftp:b66.cfg")),
    DeviationCase("no-fallthrough-on-empty-160",
                  {160: _url("gopher://SERVER/x.img"), 66: _url("http://SERVER/a66.img;b66.cfg")},
                  ("http:/a66.img", "http:/b66.cfg"),
                  (REDIRECT,)),
    DeviationCase("url-option-override-ignored",
                  {150: _url("http://SERVER/a150.img;b150.cfg"), 160: _url("http://SERVER/a160.img;b160.cfg")},
                  ("http:/a150.img", "http:/b150.cfg"),
                  ("http:/a160.img", "http:/b160.cfg"),
                  settings={"provisioning/url_option_value": "150"}),
    DeviationCase("config-before-firmware", {160: _url("http://SERVER/fw.img;cfg.cfg")},
                  ("http:/fw.img", "http:/cfg.cfg"),
                  ("http:/cfg.cfg", "http:/fw.img")),
    DeviationCase("config-never-requested", {160: _url("http://SERVER/fw.img;cfg.cfg")},
                  ("http:/fw.img", "http:/cfg.cfg"),
                  ("http:/fw.img",)),
    DeviationCase("firmware-only-defaults", {160: _url("tftp://SERVER")},
                  ("tftp:440HD.img", "tftp:{MAC}.cfg"),
                  ("tftp:440HD.img",)),
    DeviationCase("extra-redirect-request", {160: _url("http://SERVER/fw.img;cfg.cfg")},
                  ("http:/fw.img", "http:/cfg.cfg"),
                  ("http:/fw.img", "http:/cfg.cfg", REDIRECT)),
    DeviationCase("option43-tlv-ignored",
                  {43: bytes([1, 32]) + _url("http://SERVER/a43.img;b43.cfg") + b"\xff"},
                  ("http:/a43.img", "http:/b43.cfg"),
                  (REDIRECT,)),
    DeviationCase("directory-url-as-file", {160: _url("http://SERVER/dir/")},
                  ("http:/dir/440HD.img", "http:/dir/{MAC}.cfg"),
                  ("http:/dir", "http:/{MAC}.cfg")),
    DeviationCase("model-case-lowered", {160: _url("http://SERVER/<MODEL>.img;<MODEL>_<MAC>.cfg")},
                  ("http:/440HD.img", "http:/440HD_{MAC}.cfg"),
                  ("http:/440HD.img", "http:/440hd_{MAC}.cfg")),
    # The late request is the configuration once more (its delay: test_timing_on_wire.py).
    DeviationCase("late-request", {160: _url("http://SERVER/fw.img;cfg.cfg")},
                  ("http:/fw.img", "http:/cfg.cfg"),
                  ("http:/fw.img", "http:/cfg.cfg", "http:/cfg.cfg")),
]
#: reboot-after-config keeps the requests of one cycle (in_requests=False): its restart and
#: second cycle are shown on the wire in test_timing_on_wire.py. option77-omitted keeps the
#: requests too (in_dhcp): what its DHCP lacks is in test_firmware.py and tests/e2e.


def expand(expected: tuple[str, ...], mac: str) -> list[str]:
    mac = mac.replace(":", "")
    return [e.replace("{MAC}", mac.upper()).replace("{mac}", mac.lower()) for e in expected]
