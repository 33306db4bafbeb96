"""A rig described once: place definitions and exporter config from rig files, and the rig a
run uses rebuilt from a locked place's resources."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from framework.labgrid.client import Resource
from framework.labgrid.places import (
    PlaceMismatch,
    exporter_configs,
    group_resources,
    place_definition,
    resolve_rig,
)
from framework.rig import load_rig
from framework.rig.model import Rig
from framework.sim.rigfile import sim_rig_document


def _rig(tmp_path: Path, name: str = "bench-a", phones: int = 2, **labgrid: Any
         ) -> tuple[dict[str, Any], Rig]:
    doc = sim_rig_document(prefix="hilt-g-u", phones=phones)
    doc["name"] = name
    doc["phones"][1 % phones]["console"]["serial"]["url"] = \
        "rfc2217://192.0.2.251:7102?ign_set_control"
    if labgrid:
        doc["labgrid"] = labgrid
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return doc, load_rig(path)


def _resources(rig: Rig, exporter: str = "exp", **override: dict[str, Any]) -> list[Resource]:
    out = []
    for name, spec in group_resources(rig).items():
        params = {k: v for k, v in spec.items() if k != "cls"}
        params.update(override.get(name, {}))
        out.append(Resource(exporter, rig.name, spec["cls"], name, params))
    return out


def test_place_definition_tags_and_match(tmp_path: Path) -> None:
    _, rig = _rig(tmp_path, tags={"lab": "l1", "firmware": "3.4.3"}, exporter="host7")
    d = place_definition(rig)
    assert d.name == "bench-a" and d.match == "host7/bench-a/*"
    # model differs between the phones: no model tag; the rig's own tags win
    assert dict(d.tags) == {"rig": "bench-a", "firmware": "3.4.3", "lab": "l1"}


def test_exported_resources_per_phone_without_secrets(tmp_path: Path) -> None:
    _, rig = _rig(tmp_path)
    res = group_resources(rig)
    assert res["power-ph1"] == {"cls": "NetworkPowerPort", "model": "apc",
                                "host": "192.0.2.250", "index": 1}
    assert res["console-ph2"] == {"cls": "NetworkSerialPort", "host": "192.0.2.251",
                                  "port": 7102, "speed": 115200, "protocol": "rfc2217"}
    assert res["ssh-ph1"] == {"cls": "NetworkService", "address": "192.0.2.11", "port": 22,
                              "username": "admin"}
    assert "community" not in yaml.safe_dump(exporter_configs([rig]))


def test_two_rigs_in_one_exporter_group_is_an_error(tmp_path: Path) -> None:
    _, a = _rig(tmp_path, "a", exporter="e", group="g")
    _, b = _rig(tmp_path, "b", exporter="e", group="g")
    with pytest.raises(ValueError, match="already has a group 'g'"):
        exporter_configs([a, b])


def test_resolved_rig_takes_addresses_from_the_place(tmp_path: Path) -> None:
    doc, rig = _rig(tmp_path)
    resources = _resources(rig, **{
        "power-ph1": {"host": "10.9.9.9:1161", "index": 5},
        "power-ph2": {"host": "10.9.9.9:1161", "index": 6},
        "console-ph1": {"host": "ts.lab", "port": 4001, "speed": 9600},
        "ssh-ph2": {"address": "10.1.1.2", "port": 2222}})
    out = resolve_rig(doc, rig, resources)
    assert out["pdus"][0]["host"] == "10.9.9.9" and out["pdus"][0]["port"] == 1161
    assert [p["power"]["outlet"] for p in out["phones"]] == [5, 6]
    assert out["phones"][0]["console"]["serial"] == {"url": "socket://ts.lab:4001",
                                                     "baudrate": 9600}
    assert out["phones"][1]["console"]["serial"]["url"] == \
        "rfc2217://192.0.2.251:7102?ign_set_control"
    assert out["phones"][1]["console"]["ssh"]["host"] == "10.1.1.2"
    assert out["phones"][0]["credentials"]["password"] == {"env": "HIL_SIM_PHONE_PASSWORD"}
    path = tmp_path / "resolved.yaml"
    path.write_text(yaml.safe_dump(out))
    assert load_rig(path).phone("ph1").power.outlet == 5  # still a valid rig


def test_a_missing_resource_is_a_mismatch_naming_it(tmp_path: Path) -> None:
    doc, rig = _rig(tmp_path)
    resources = [r for r in _resources(rig) if r.name != "console-ph2"]
    with pytest.raises(PlaceMismatch, match=r"console-ph2 .*exporter"):
        resolve_rig(doc, rig, resources)


def test_an_unavailable_resource_is_a_mismatch(tmp_path: Path) -> None:
    doc, rig = _rig(tmp_path)
    resources = [Resource(r.exporter, r.group, r.cls, r.name, r.params,
                          available=r.name != "power-ph1") for r in _resources(rig)]
    with pytest.raises(PlaceMismatch, match="power-ph1 is unavailable"):
        resolve_rig(doc, rig, resources)


def test_one_pdu_at_two_addresses_is_a_mismatch(tmp_path: Path) -> None:
    doc, rig = _rig(tmp_path)
    with pytest.raises(PlaceMismatch, match="PDU pdu1 is at"):
        resolve_rig(doc, rig, _resources(rig, **{"power-ph2": {"host": "10.0.0.1"}}))


def test_an_unknown_power_model_is_a_mismatch(tmp_path: Path) -> None:
    doc, rig = _rig(tmp_path)
    with pytest.raises(PlaceMismatch, match="power model 'gude'"):
        resolve_rig(doc, rig, _resources(rig, **{"power-ph1": {"model": "gude"}}))
