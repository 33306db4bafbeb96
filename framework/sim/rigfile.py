"""Write simulated-rig files: N virtual phones, their own namespace prefix, deviations.

Tests, benchmarks and exploration need benches of other sizes than rigs/sim.yaml, and a
prefix of their own so they never collide with a running ``hil`` lab. The file written is
an ordinary rig file: everything downstream reads it through ``framework.rig.load_rig``.

Usage::

    path = write_sim_rig(tmp / "rig.yaml", prefix="hilt-e1", phones=8,
                         deviations={"ph2": ["mac-case-flipped"]}, boot_time_s=0.2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

MODELS = ("440HD", "405HD", "420HD", "450HD", "430HD", "445HD")
MAX_PHONES = 64


def sim_rig_document(*, prefix: str, phones: int, models: Sequence[str] = MODELS,
                     firmware: str = "2.2.8.61", boot_time_s: float = 0.3,
                     deviations: Mapping[str, Sequence[str]] | None = None,
                     firmware_class: str = "framework.sim.firmware:Faithful400HD",
                     dead_outlets: Sequence[int] = (), pdu_unreachable: bool = False,
                     serial: str = "socket", versions: Mapping[str, str] | None = None,
                     boot_times: Mapping[str, float] | None = None,
                     password_envs: Mapping[str, str] | None = None,
                     consoles: Mapping[str, str] | None = None,
                     ca_file: str = "/run/hil/lab-ca/ca.pem",
                     release_deviations: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
                     late_request_s: Mapping[str, float] | None = None,
                     time_scale: float = 1.0, trigger: str | None = None,
                     settings: Mapping[str, Mapping[str, str]] | None = None,
                     provisioning_done_hint: bool = True,
                     ) -> dict[str, Any]:
    """The rig document (a dict) for ``phones`` virtual phones named ph1..phN.

    ``release_deviations`` maps a phone to {installed version: deviations}: the firmware
    behaves with those deviations while that version is installed (a buggy release).
    ``late_request_s`` maps a phone to its ``late-request`` delay (default 2.0 s).
    ``time_scale`` multiplies the sim's delays (``sim.time_scale``); ``trigger`` is the
    rig's ``bench.trigger``; ``settings`` maps a phone to its factory settings
    (``sim.phones.<name>.settings``); ``provisioning_done_hint`` gives the rig the sim's
    end-of-cycle console line (as rigs/sim.yaml does).
    """
    if not 1 <= phones <= MAX_PHONES:
        raise ValueError(f"phones={phones}: a simulated rig has 1..{MAX_PHONES} phones")
    deviations = dict(deviations or {})
    versions = dict(versions or {})
    boot_times = dict(boot_times or {})
    late = dict(late_request_s or {})
    password_envs = dict(password_envs or {})
    consoles = dict(consoles or {})
    entries: list[dict[str, Any]] = []
    for i in range(1, phones + 1):
        name = f"ph{i}"
        port = (7000 + i) if serial == "socket" else (7100 + i)
        url = (f"socket://192.0.2.251:{port}" if serial == "socket"
               else f"rfc2217://192.0.2.251:{port}?ign_set_control")
        entries.append({
            "name": name, "model": models[(i - 1) % len(models)],
            "mac": f"00:90:8F:00:{i >> 8:02X}:{i & 0xFF:02X}",
            "address": f"192.0.2.{10 + i}", "firmware": versions.get(name, firmware),
            "power": {"pdu": "pdu1", "outlet": i},
            "console": ({"ssh": {"port": 22}} if consoles.get(name) == "ssh" else
                        {"serial": {"url": url}, "ssh": {"port": 22}}),
            "credentials": {"username": "admin",
                            "password": {"env": password_envs.get(name,
                                                                  "HIL_SIM_PHONE_PASSWORD")}},
        })
    releases = {k: {v: list(d) for v, d in m.items()}
                for k, m in (release_deviations or {}).items()}
    settings = {k: dict(v) for k, v in (settings or {}).items()}
    unknown = (set(deviations) | set(releases) | set(late) | set(settings)) - \
        {e["name"] for e in entries}
    if unknown:
        raise ValueError(f"deviations for unknown phone(s): {sorted(unknown)}")
    hint = {"provisioning_done": "Provisioning done"}
    families = sorted({".".join(e["firmware"].removeprefix("UC_").split(".")[:2])
                       for e in entries})
    return {
        "name": prefix,
        "description": f"simulated bench with {phones} virtual phones",
        **({"bench": {"trigger": trigger}} if trigger else {}),
        **({"shell": {f: dict(hint) for f in families}} if provisioning_done_hint else {}),
        "lab": {"netns": f"{prefix}-lab", "interface": "br-lab", "address": "192.0.2.1/24",
                "pool": {"start": "192.0.2.100", "end": "192.0.2.199"}, "lease_time": 600},
        "pdus": [{"name": "pdu1", "driver": "apc-snmp", "host": "192.0.2.250", "port": 161,
                  "community": {"env": "HIL_SIM_SNMP_COMMUNITY"},
                  "outlets": max(8, phones)}],
        "phones": entries,
        "sim": {"prefix": prefix, "terminal_server_address": "192.0.2.251",
                "boot_time_s": boot_time_s, "time_scale": time_scale,
                "firmware": firmware_class, "ca_file": ca_file,
                "outlets_on_at_start": True,
                "pdu": {"dead_outlets": list(dead_outlets), "unreachable": pdu_unreachable},
                "phones": {e["name"]: {"deviations": list(deviations.get(e["name"], ())),
                                       **({"release_deviations": releases[e["name"]]}
                                          if e["name"] in releases else {}),
                                       **({"boot_time_s": boot_times[e["name"]]}
                                          if e["name"] in boot_times else {}),
                                       **({"late_request_s": late[e["name"]]}
                                          if e["name"] in late else {}),
                                       **({"settings": settings[e["name"]]}
                                          if e["name"] in settings else {})}
                           for e in entries}},
    }


def write_sim_rig(path: Path, **kwargs: Any) -> Path:
    """Write :func:`sim_rig_document` to ``path`` and return it."""
    path.write_text(yaml.safe_dump(sim_rig_document(**kwargs), sort_keys=False))
    return path
