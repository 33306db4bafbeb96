"""`hil lab serve`: the DHCP server and all provisioning services on one bench interface.

For a technician at a real bench: the phones named in an options file get exactly those
DHCP options, and every DHCP message and file request is shown live and appended to a
JSON-lines log. Nobody else gets an answer (allowlist = the file's MACs), and nothing
starts if another DHCP server already answers on that interface.

Options file (YAML), one entry per allowed MAC::

    00:90:8F:00:00:01:
      66: "Audiocodes.com"
      67: ""                      # present but empty
      160: "http://192.0.2.1/;<MODEL>_<MAC>_conf.cfg"
      43: {hex: "0104c0000201"}   # binary values as hex
    00908F000002: {}              # allowed, no provisioning option
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml

from framework.errors import InputError
from framework.resolution import ResolutionInputError, normalise_mac
from framework.rig.bounded_yaml import safe_load as bounded_safe_load


class OptionsFileError(InputError):
    """The options file is unusable; the message names the file, the key and why."""


@dataclass(frozen=True)
class PhoneOptions:
    mac: str  # aa:bb:cc:dd:ee:ff
    options: dict[int, bytes]


def _value(where: str, value: Any) -> bytes:
    if isinstance(value, str):
        try:
            return value.encode("ascii")
        except UnicodeEncodeError:
            return value.encode("utf-8")
    if isinstance(value, bool) or value is None:
        raise OptionsFileError(f"{where}: expected a string or {{hex: ...}}, got {value!r}")
    if isinstance(value, int | float):
        return str(value).encode()
    if isinstance(value, Mapping) and set(value) == {"hex"}:
        try:
            return bytes.fromhex(str(value["hex"]).replace(":", "").replace(" ", ""))
        except ValueError:
            raise OptionsFileError(f"{where}.hex: {value['hex']!r} is not hex") from None
    raise OptionsFileError(f"{where}: expected a string or {{hex: ...}}, got {value!r}")


def load_options_file(path: Path) -> list[PhoneOptions]:
    """Parse and validate an options file; every problem names file and key."""
    try:
        data = bounded_safe_load(path.read_text())  # alias bombs refused (rig/bounded_yaml)
    except FileNotFoundError:
        raise OptionsFileError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise OptionsFileError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") \
            from None
    if not isinstance(data, Mapping) or not data:
        raise OptionsFileError(f"{path}: expected a mapping of MAC -> options")
    out = []
    for key, opts in data.items():
        where = f"{path}: {key}"
        try:
            mac = normalise_mac(str(key))
        except ResolutionInputError:
            raise OptionsFileError(f"{where}: not a MAC address (12 hex digits)") from None
        if opts is None:
            opts = {}
        if not isinstance(opts, Mapping):
            raise OptionsFileError(f"{where}: expected a mapping of option code -> value")
        options: dict[int, bytes] = {}
        for code, value in opts.items():
            if not isinstance(code, int) or not 1 <= code <= 254 or code in (0, 255):
                raise OptionsFileError(f"{where}.{code}: option code must be a number 1-254")
            options[code] = _value(f"{where}.{code}", value)
        colon = ":".join(mac[i:i + 2] for i in range(0, 12, 2)).lower()
        out.append(PhoneOptions(colon, options))
    return out


def default_pool(address: ipaddress.IPv4Interface) -> tuple[str, str]:
    """.100-.199 of a /24 (or the middle of a larger/smaller net), never the server."""
    net = address.network
    hosts = list(net.hosts())
    if len(hosts) < 4:
        raise OptionsFileError(f"--addr {address}: network too small for a pool")
    start, end = (100, 199) if net.prefixlen == 24 else (len(hosts) // 2, len(hosts) - 1)
    return str(hosts[start - 1]), str(hosts[min(end, len(hosts)) - 1])


class LiveLog:
    """One JSON object per DHCP message and request, appended and flushed as they come,
    and one human line each on the console."""

    def __init__(self, sink: IO[str] | None, echo: Any) -> None:
        self.sink = sink
        self.echo = echo
        self._lock = threading.Lock()

    def write(self, obj: dict[str, Any], line: str) -> None:
        with self._lock:
            if self.sink is not None:
                self.sink.write(json.dumps(obj, sort_keys=True) + "\n")
                self.sink.flush()
            self.echo(line)

    def dhcp(self, record: Any) -> None:
        d = record.to_dict()
        obj = {"protocol": "dhcp", "time": d.get("time"), "client_mac": d.get("mac"),
               "client_ip": d.get("yiaddr") or d.get("ciaddr"), "direction": d.get("direction"),
               "message_type": d.get("message_type"), "ignored": d.get("ignored"),
               "note": d.get("note")}
        mark = " (ignored: not on the allowlist)" if d.get("ignored") else ""
        self.write(obj, f"dhcp  {d.get('direction'):<8} {d.get('message_type'):<8} "
                        f"{d.get('mac')} {d.get('note') or ''}{mark}")

    def request(self, record: Any) -> None:
        obj = {"protocol": record.protocol, "time": record.time, "client_ip": record.client_ip,
               "client_mac": record.client_mac, "url": record.url, "host": record.host,
               "path": record.path, "method": record.method, "outcome": record.outcome,
               "status": record.status, "bytes": record.bytes_sent,
               "user_agent": record.user_agent}
        self.write(obj, record.summary())

    def foreign_dhcp(self, message: Any) -> None:
        """A foreign DHCP server answered on the bench (a ForeignDhcpMessage): one JSON
        object and one warning line, as it happens."""
        obj = {"protocol": "dhcp", "time": message.time, "foreign_server": message.server_ip,
               "foreign_server_mac": message.server_mac, "message_type": message.message_type,
               "client_mac": message.chaddr, "client_ip": message.yiaddr}
        self.write(obj, f"WARNING {message.describe()}: the phones may not be provisioned "
                        "by us")
