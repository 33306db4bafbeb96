"""A rig described once: labgrid places and exporter configuration from rig files, and the
way back, from a locked place's resources to the rig a run uses.

Per phone ``P`` of a rig, its resource group (``labgrid.group``, default the rig name) holds:

- ``power-P``: ``NetworkPowerPort`` (model ``apc`` for ``apc-snmp``, ``poe_mib`` for
  ``poe-snmp``; ``host`` is ``HOST`` or ``HOST:PORT`` when the SNMP port is not 161; ``index``
  the outlet). PDUs of other drivers are not exported; the rig file's values are used.
- ``console-P``: ``NetworkSerialPort`` (``host``, ``port``, ``speed``, ``protocol`` raw or
  rfc2217) for a ``socket://`` or ``rfc2217://`` serial console.
- ``ssh-P``: ``NetworkService`` (``address``, ``port``, ``username``) for the SSH console.

Secrets (SNMP communities, passwords) are never exported: they stay references in the rig
file. The place (``labgrid.place``, default the rig name) matches ``EXPORTER/GROUP/*`` and
carries the tags ``rig``, ``model``/``firmware`` when every phone agrees, and the rig's own
``labgrid.tags``.

Network resources are descriptions: the exporter announces them and never connects to
them, so it may run anywhere that reaches the coordinator. The addresses mean something on
the bench's lab network, where ``hil run`` does its lab I/O (on the simulated rig: inside
the ``PREFIX-lab`` namespace, named by ``lab.netns``).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from framework.errors import HilError
from framework.labgrid.client import Resource
from framework.rig.model import Rig

POWER_MODELS = {"apc-snmp": "apc", "poe-snmp": "poe_mib"}
PDU_DRIVER_FOR_MODEL = {v: k for k, v in POWER_MODELS.items()}


class PlaceMismatch(HilError, ValueError):
    """The locked place's resources do not fit the rig file (names the resource)."""


@dataclass(frozen=True)
class PlaceDefinition:
    """What ``hil lab publish`` creates on the coordinator for one rig."""

    name: str
    rig: str
    exporter: str
    group: str
    tags: Mapping[str, str]
    comment: str

    @property
    def match(self) -> str:
        return f"{self.exporter}/{self.group}/*"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "matches": [self.match], "tags": dict(self.tags),
                "comment": self.comment}


def place_name(rig: Rig) -> str:
    return (rig.labgrid.place if rig.labgrid and rig.labgrid.place else rig.name)


def place_definition(rig: Rig) -> PlaceDefinition:
    lg = rig.labgrid
    name = place_name(rig)
    tags: dict[str, str] = {"rig": rig.name}
    models = {p.model for p in rig.phones}
    firmwares = {p.firmware for p in rig.phones}
    if len(models) == 1:
        tags["model"] = models.pop()
    if len(firmwares) == 1:
        tags["firmware"] = firmwares.pop()
    tags.update(lg.tags if lg else {})
    return PlaceDefinition(name=name, rig=rig.name,
                           exporter=(lg.exporter if lg and lg.exporter else name),
                           group=(lg.group if lg and lg.group else rig.name), tags=tags,
                           comment=f"hil rig {rig.name}: {len(rig.phones)} phone(s)")


def _serial_resource(url: str, baudrate: int) -> dict[str, Any] | None:
    parts = urlsplit(url)
    if parts.scheme not in ("socket", "rfc2217") or not parts.hostname or not parts.port:
        return None
    return {"cls": "NetworkSerialPort", "host": parts.hostname, "port": parts.port,
            "speed": baudrate, "protocol": "raw" if parts.scheme == "socket" else "rfc2217"}


def group_resources(rig: Rig) -> dict[str, dict[str, Any]]:
    """The exporter resource group of one rig (resource name -> cls and parameters)."""
    out: dict[str, dict[str, Any]] = {}
    for phone in rig.phones:
        pdu = rig.pdu(phone.power.pdu)
        model = POWER_MODELS.get(pdu.driver)
        if model is not None:
            port = getattr(pdu, "port", 161)
            host = pdu.host if port == 161 else f"{pdu.host}:{port}"
            out[f"power-{phone.name}"] = {"cls": "NetworkPowerPort", "model": model,
                                          "host": host, "index": phone.power.outlet}
        if phone.console.serial is not None:
            serial = _serial_resource(phone.console.serial.url, phone.console.serial.baudrate)
            if serial is not None:
                out[f"console-{phone.name}"] = serial
        if phone.console.ssh is not None:
            out[f"ssh-{phone.name}"] = {"cls": "NetworkService",
                                        "address": phone.console.ssh.host or str(phone.address),
                                        "port": phone.console.ssh.port,
                                        "username": phone.credentials.username}
    return out


def exporter_configs(rigs: Iterable[Rig]) -> dict[str, dict[str, Any]]:
    """Exporter name -> its configuration document (group -> resources)."""
    out: dict[str, dict[str, Any]] = {}
    for rig in rigs:
        d = place_definition(rig)
        groups = out.setdefault(d.exporter, {})
        if d.group in groups:
            raise ValueError(f"rig {rig.name}: exporter {d.exporter} already has a group "
                             f"{d.group!r} (set labgrid.group)")
        groups[d.group] = {"location": f"hil rig {rig.name} (generated by hil lab publish)",
                             **group_resources(rig)}
    return out


def resolve_rig(document: Mapping[str, Any], rig: Rig,
                resources: Iterable[Resource]) -> dict[str, Any]:
    """The rig document a run uses on a locked place: PDU hosts, outlets, serial URLs and
    SSH endpoints taken from the place's acquired resources. Everything labgrid does not
    describe (lab network, MACs, credentials as references, the sim section) is kept.

    Raises PlaceMismatch when a resource the rig publishes is missing or unusable.
    """
    by_name = {r.name: r for r in resources}
    expected = group_resources(rig)
    doc = copy.deepcopy(dict(document))
    doc.pop("labgrid", None)
    pdu_hosts: dict[str, tuple[str, int]] = {}
    for raw_phone in doc["phones"]:
        name = raw_phone["name"]
        for res_name in (f"{kind}-{name}" for kind in ("power", "console", "ssh")):
            spec = expected.get(res_name)
            if spec is None:
                continue
            res = by_name.get(res_name)
            if res is None:
                raise PlaceMismatch(f"resource {res_name} ({spec['cls']}) is not part of the "
                                    "place (is its exporter running?)")
            if res.cls != spec["cls"]:
                raise PlaceMismatch(f"resource {res_name} is a {res.cls}, expected {spec['cls']}")
            if not res.available:
                raise PlaceMismatch(f"resource {res_name} is unavailable (its exporter is "
                                    "offline)")
            p = res.params
            try:
                if res.cls == "NetworkPowerPort":
                    pdu_name = raw_phone["power"]["pdu"]
                    driver = PDU_DRIVER_FOR_MODEL.get(str(p["model"]))
                    if driver is None:
                        raise PlaceMismatch(f"resource {res_name}: power model {p['model']!r} "
                                            f"has no driver here ({', '.join(POWER_MODELS.values())})")
                    host, _, port = str(p["host"]).partition(":")
                    endpoint = (host, int(port or 161))
                    if pdu_hosts.setdefault(pdu_name, endpoint) != endpoint:
                        raise PlaceMismatch(f"resource {res_name}: PDU {pdu_name} is at "
                                            f"{endpoint[0]}:{endpoint[1]} here but "
                                            f"{pdu_hosts[pdu_name][0]}:{pdu_hosts[pdu_name][1]} "
                                            "for another phone")
                    raw_phone["power"] = {**raw_phone["power"], "outlet": int(p["index"])}
                elif res.cls == "NetworkSerialPort":
                    serial = dict(raw_phone["console"]["serial"])
                    query = urlsplit(serial["url"]).query
                    if p.get("protocol", "raw") == "rfc2217":
                        url = f"rfc2217://{p['host']}:{int(p['port'])}"
                        url += f"?{query}" if query else "?ign_set_control"
                    else:
                        url = f"socket://{p['host']}:{int(p['port'])}"
                    serial["url"] = url
                    if p.get("speed"):
                        serial["baudrate"] = int(p["speed"])
                    raw_phone["console"] = {**raw_phone["console"], "serial": serial}
                elif res.cls == "NetworkService":
                    ssh = dict(raw_phone["console"].get("ssh") or {})
                    ssh["host"] = str(p["address"])
                    ssh["port"] = int(p.get("port") or 22)
                    raw_phone["console"] = {**raw_phone["console"], "ssh": ssh}
            except (KeyError, TypeError, ValueError) as exc:
                if isinstance(exc, PlaceMismatch):
                    raise
                raise PlaceMismatch(f"resource {res_name}: unusable parameters {dict(p)!r} "
                                    f"({exc})") from None
    for raw_pdu in doc.get("pdus", []):
        if raw_pdu["name"] in pdu_hosts:
            raw_pdu["host"], raw_pdu["port"] = pdu_hosts[raw_pdu["name"]]
    return doc


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe(text: str) -> str:
    return _SAFE.sub("_", text)
