"""Kea's configuration for one lab interface: how the backend contract becomes Kea JSON.

Kept apart from the process and control-socket handling in :mod:`framework.dhcp.kea`
because this is where the mapping documented there lives (allowlist as the ``DROP``
class, option sets as hw-address reservations, option 43 as a per-MAC class) and it is
a pure function of the settings and the per-MAC state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Set
from typing import Any

from framework.dhcp.options import OptionSet
from framework.dhcp.settings import ServerSettings


def _mac_literal(mac: str) -> str:
    return "0x" + mac.replace(":", "")


def kea_config(settings: ServerSettings, *, answered: Set[str], option_sets: Mapping[str, OptionSet],
               workdir: str, hook: str) -> dict[str, Any]:
    """The complete ``Dhcp4`` configuration: answer the ``answered`` MACs only (allowlist
    minus the ignore knob), each with its option set; sockets, leases and locks in ``workdir``;
    ``hook`` is the lease_cmds library (for ``lease4-get-all``)."""
    s = settings
    macs = sorted(answered)
    if macs:
        drop_test = "not (" + " or ".join(f"pkt4.mac == {_mac_literal(m)}" for m in macs) + ")"
    else:
        drop_test = "'drop' == 'drop'"
    classes: list[dict[str, Any]] = [{"name": "DROP", "test": drop_test}]
    reservations: list[dict[str, Any]] = []
    for mac in sorted(set(s.fixed) | set(option_sets)):
        entry: dict[str, Any] = {"hw-address": mac}
        if mac in s.fixed:
            entry["ip-address"] = str(s.fixed[mac])
        option_set = option_sets.get(mac, {})
        data = [
            {"code": code, "space": "dhcp4", "csv-format": False, "data": value.hex(),
             "always-send": True}
            for code, value in option_set.items() if code != 43
        ]
        if data:
            entry["option-data"] = data
        if len(entry) > 1:  # Kea refuses a reservation that reserves nothing
            reservations.append(entry)
        if 43 in option_set:
            classes.append({
                "name": f"hil-43-{mac.replace(':', '')}",
                "test": f"pkt4.mac == {_mac_literal(mac)}",
                "option-def": [{"name": "vendor-encapsulated-options", "code": 43, "type": "binary"}],
                "option-data": [{"name": "vendor-encapsulated-options", "csv-format": False,
                                 "data": option_set[43].hex(), "always-send": True}],
            })
    base: list[dict[str, Any]] = [{"name": "dhcp-server-identifier", "data": str(s.server_ip)}]
    if s.router is not None:
        base.append({"name": "routers", "data": str(s.router)})
    if s.dns:
        base.append({"name": "domain-name-servers", "data": ", ".join(str(d) for d in s.dns)})
    if s.domain:
        base.append({"name": "domain-name", "data": s.domain})
    subnet: dict[str, Any] = {
        "id": 1,
        "subnet": str(s.network),
        "option-data": base,
        "reservations": reservations,
    }
    if s.pool is not None:
        subnet["pools"] = [{"pool": f"{s.pool[0]} - {s.pool[1]}"}]
    return {"Dhcp4": {
        "interfaces-config": {"interfaces": [s.interface], "dhcp-socket-type": "raw"},
        "control-socket": {"socket-type": "unix", "socket-name": os.path.join(workdir, "control.sock")},
        "lease-database": {"type": "memfile", "persist": True, "lfc-interval": 0,
                           "name": os.path.join(workdir, "leases4.csv")},
        "hooks-libraries": [{"library": hook}],
        "valid-lifetime": s.lease_time,
        "min-valid-lifetime": s.lease_time,
        "max-valid-lifetime": s.lease_time,
        "renew-timer": s.lease_time // 2,
        "rebind-timer": s.lease_time * 7 // 8,
        "authoritative": True,  # NAK REQUESTs for addresses that are not the client's
        "match-client-id": False,  # a phone is its MAC
        "host-reservation-identifiers": ["hw-address"],
        "multi-threading": {"enable-multi-threading": False},
        "client-classes": classes,
        "subnet4": [subnet],
        "loggers": [{"name": "kea-dhcp4", "severity": "INFO", "output_options": [{"output": "stdout", "flush": True}]}],
    }}

