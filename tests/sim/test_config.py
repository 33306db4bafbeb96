"""The rig's sim section: validation errors name the file and key; secrets stay secret."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from framework.sim.config import SimConfigError, ensure_secrets, load_bench
from tests.sim.harness import COMMUNITY_VAR, PASSWORD_VAR, PREFIX, phones, rig_document

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def test_the_default_rig_describes_four_models() -> None:
    bench = load_bench(ROOT / "rigs/sim.yaml")
    assert len({p.spec.model for p in bench.phones}) >= 4
    assert bench.namespaces[:2] == ["hil-lab", "hil-infra"]
    assert bench.phones[0].netns == "hil-ph-ph1"


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["sim"].update(colour="red"), "sim.colour: unknown key"),
    (lambda d: d["sim"]["phones"]["ph1"].update(deviations=["nope"]),
     "sim.phones.ph1.deviations: unknown deviation(s) nope; known: mac-case-flipped"),
    (lambda d: d["sim"]["phones"].update(ph9={}), "sim.phones.ph9: no phone 'ph9'"),
    (lambda d: d["sim"].update(prefix="Bad Prefix"), "sim.prefix: String should match"),
    (lambda d: d["sim"].update(boot_time_s=500), "sim.boot_time_s: Input should be less"),
    (lambda d: d["sim"]["phones"]["ph1"].update(late_request_s=-1),
     "sim.phones.ph1.late_request_s: Input should be greater than or equal to 0"),
    (lambda d: d["sim"]["phones"]["ph1"].update(late_request_s="soon"),
     "sim.phones.ph1.late_request_s: Input should be a valid number"),
    (lambda d: d["sim"].update(firmware="nowhere.module:X"),
     "sim.firmware: firmware module 'nowhere.module' cannot be imported"),
    (lambda d: d["lab"].update(netns="other-lab"), f"lab.netns: must be '{PREFIX}-lab'"),
    (lambda d: d["phones"][1]["console"]["serial"].update(url="socket://192.0.2.251:7009"),
     "phones[1].console.serial.url: phone 2 (ph2) is served at socket://192.0.2.251:7002"),
    (lambda d: d.pop("sim"), "this rig has no sim section"),
])
def test_bad_sim_sections_are_one_line_naming_file_and_key(tmp_path: Path, change: Any,
                                                           message: str) -> None:
    document = rig_document(phones(2))
    change(document)
    path = write(tmp_path, document)
    with pytest.raises(SimConfigError) as caught:
        load_bench(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_unset_secrets_get_random_values_in_a_private_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = tmp_path / "run" / "secrets.env"
    monkeypatch.setenv("HIL_SECRETS_FILE", str(secrets))
    monkeypatch.delenv(PASSWORD_VAR, raising=False)
    monkeypatch.setenv(COMMUNITY_VAR, "from-the-environment")
    bench = load_bench(write(tmp_path, rig_document(phones(2))))
    assert ensure_secrets(bench) == [PASSWORD_VAR]
    assert stat.S_IMODE(os.stat(secrets).st_mode) == 0o600
    values = dict(line.split("=", 1) for line in secrets.read_text().splitlines())
    assert set(values) == {PASSWORD_VAR} and len(values[PASSWORD_VAR]) >= 12
    assert ensure_secrets(bench) == []  # idempotent: the value stays
    assert dict(line.split("=", 1) for line in secrets.read_text().splitlines()) == values


def test_late_request_delay_is_per_phone_and_defaults_to_two_seconds(tmp_path: Path) -> None:
    document = rig_document(phones(2))
    document["sim"]["phones"]["ph2"]["late_request_s"] = 1.25
    bench = load_bench(write(tmp_path, document))
    assert [p.late_request_s for p in bench.phones] == [2.0, 1.25]
